"""Multipart and MegaEdit products through the real daemon."""

from __future__ import annotations

import pikepdf

from tests.conftest import Site
from tests.helpers import drop_ticket, job_ticket, make_pdf


def page_labels(path) -> list[str]:
    """The `% label page N` comment at the start of each page's content."""
    with pikepdf.open(path) as pdf:
        return [page.Contents.read_bytes().split(b"\n")[0].decode()[2:] for page in pdf.pages]


def test_multipart_combine_in_ticket_order(site: Site, daemon_factory):
    daemon_factory()
    make_pdf(site.intake / "J-B" / "cover.pdf", pages=2, label="cover")
    make_pdf(site.intake / "J-B" / "body.pdf", pages=6, label="body")
    ticket = job_ticket("J-B", ["J-B/cover.pdf", "J-B/body.pdf"], product_type="multipart",
                        product={"pages": {"min": 8, "max": 64, "multiple_of": 4}})
    drop_ticket(site.intake, ticket)
    job = site.wait_status("J-B", "InHotFolder")
    assert job["outputs"][0]["pages"] == 8
    labels = page_labels(site.hot / "5001_J-B_FLYER-A5_q250.pdf")
    assert labels == [f"cover page {n}" for n in (1, 2)] + [f"body page {n}" for n in range(1, 7)]


def test_multipart_separate_outputs_use_part_and_role(tmp_path, daemon_factory):
    hot = ('[hotfolders.rip1]\nkind = "local"\npath = "hot/rip1"\n'
           'filename = "{job_id}_{part}_{role}.pdf"\n')
    site = Site(tmp_path / "s", hotfolders=hot)
    from tests.conftest import DaemonProcess
    daemon = DaemonProcess(site)
    try:
        make_pdf(site.intake / "J-S" / "a.pdf", pages=2, label="a")
        make_pdf(site.intake / "J-S" / "b.pdf", pages=4, label="b")
        ticket = job_ticket("J-S", ["J-S/a.pdf", "J-S/b.pdf"], product_type="multipart",
                            product={"assembly": "separate", "pages": {"min": 2, "max": 4}})
        ticket["files"][0]["role"] = "cover"
        ticket["files"][1]["role"] = "body"
        drop_ticket(site.intake, ticket)
        site.wait_status("J-S", "InHotFolder")
        assert sorted(p.name for p in site.hot.iterdir()) == ["J-S_1_cover.pdf",
                                                              "J-S_2_body.pdf"]
        assert page_labels(site.hot / "J-S_2_body.pdf") == [f"b page {n}" for n in range(1, 5)]
    finally:
        daemon.stop()


def test_separate_outputs_never_share_a_name_with_the_bundled_template(site: Site,
                                                                        daemon_factory):
    daemon_factory()  # filename "{order_id}_{job_id}_{sku}_q{quantity}.pdf": no {part}
    make_pdf(site.intake / "J-S" / "cover.pdf", pages=2, label="cover")
    make_pdf(site.intake / "J-S" / "body.pdf", pages=4, label="body")
    ticket = job_ticket("J-S", ["J-S/cover.pdf", "J-S/body.pdf"], product_type="multipart",
                        product={"assembly": "separate", "pages": {"min": 2, "max": 4}})
    drop_ticket(site.intake, ticket)
    job = site.wait_status("J-S", "InHotFolder")
    names = ["5001_J-S_FLYER-A5_q250_1.pdf", "5001_J-S_FLYER-A5_q250_2.pdf"]
    assert sorted(p.name for p in site.hot.iterdir()) == names
    assert page_labels(site.hot / names[0]) == ["cover page 1", "cover page 2"]
    assert page_labels(site.hot / names[1]) == [f"body page {n}" for n in range(1, 5)]
    assert sorted(d["path"].rsplit("/", 1)[1] for d in job["deliveries"]) == names


def test_two_outputs_to_one_path_are_refused_not_delivered(tmp_path, daemon_factory):
    hot = ('[hotfolders.rip1]\nkind = "local"\npath = "hot/rip1"\nfilename = "{job_id}.pdf"\n'
           '[hotfolders.rip2]\nkind = "local"\npath = "hot/rip1"\nfilename = "{job_id}.pdf"\n')
    route = '[[routes]]\nmatch = {}\nto = ["rip1", "rip2"]\n'
    site = Site(tmp_path / "s", hotfolders=hot, routes=route)
    from tests.conftest import DaemonProcess
    daemon = DaemonProcess(site)
    try:
        make_pdf(site.intake / "J-1" / "art.pdf")
        drop_ticket(site.intake, job_ticket("J-1", ["J-1/art.pdf"]))
        job = site.wait_status("J-1", "CopyToHotFolderFailed")
        assert "two outputs of job J-1 would be delivered as" in job["history"][-1]["message"]
        assert not site.hot.exists() or list(site.hot.iterdir()) == []
    finally:
        daemon.stop()


def test_megaedit_pages_merge_in_order_with_boxes(site: Site, daemon_factory):
    daemon_factory()
    files = []
    for n in range(1, 5):
        make_pdf(site.intake / "J-M" / f"p{n}.pdf", pages=1, label=f"surface{n}")
        files.append(f"J-M/p{n}.pdf")
    ticket = job_ticket("J-M", files, product_type="megaedit",
                        product={"pages": {"exact": 4}})
    for f in ticket["files"]:
        f["role"] = "page"
    drop_ticket(site.intake, ticket)
    site.wait_status("J-M", "InHotFolder")
    out = site.hot / "5001_J-M_FLYER-A5_q250.pdf"
    assert [label.split()[0] for label in page_labels(out)] == [
        "surface1", "surface2", "surface3", "surface4"]
    with pikepdf.open(out) as pdf:
        assert all("/TrimBox" in p.obj and "/BleedBox" in p.obj for p in pdf.pages)


def test_a_failing_multipart_job_keeps_its_report(site: Site, daemon_factory):
    daemon_factory()
    make_pdf(site.intake / "J-F" / "cover.pdf", pages=2)
    make_pdf(site.intake / "J-F" / "body.pdf", pages=3)
    ticket = job_ticket("J-F", ["J-F/cover.pdf", "J-F/body.pdf"], product_type="multipart",
                        product={"pages": {"min": 8, "multiple_of": 4}})
    drop_ticket(site.intake, ticket)
    job = site.wait_status("J-F", "ValidationFailed")
    failed = [c for c in job["preflight"]["checks"] if not c["ok"]]
    assert failed[0]["message"] == ("the combined document has 5 pages; the product needs "
                                    "at least 8")
    shown = site.cli("show", "J-F").stdout
    assert "    failed (1)\n      page_count: " in shown
