from __future__ import annotations

from pathlib import Path

import pytest

from outputd.config import load_config
from outputd.pipeline.routing import filename, route, sanitise
from outputd.tickets import JobTicket
from tests.helpers import job_ticket, write_config


def ticket(**changes) -> JobTicket:
    return JobTicket.model_validate(job_ticket("J-1", ["J-1/a.pdf"], **changes))


ROUTES = """
[[routes]]
match = {test_mode = true}
skip = true

[[routes]]
match = {sku = "BOOK-*", "attributes.finish" = "saddle*"}
to = ["rip1", "rip2"]

[[routes]]
match = {type = "static", storefront = "acme"}
to = ["rip1"]
"""
HOT = """
[hotfolders.rip1]
kind = "local"
path = "hot/1"
filename = "{job_id}.pdf"

[hotfolders.rip2]
kind = "local"
path = "hot/2"
filename = "{job_id}.pdf"
"""


@pytest.fixture
def config(tmp_path: Path):
    return load_config(write_config(tmp_path, routes=ROUTES, hotfolders=HOT))


def test_first_matching_route_wins(config):
    assert route(config, ticket()).to == ("rip1",)
    assert route(config, ticket(test_mode=True)).skip_reason == (
        "[[routes]] number 1 says to skip hot folders")
    book = ticket(product={"sku": "BOOK-A5"}, attributes={"finish": "saddle stitch"})
    assert route(config, book).to == ("rip1", "rip2")
    wire = ticket(product={"sku": "BOOK-A5"}, attributes={"finish": "wire-o"})
    assert route(config, wire).to == ("rip1",)


def test_a_job_matching_no_route_is_skipped_with_that_reason(config):
    assert route(config, ticket(storefront="other")).skip_reason == "no route matches this job"


def test_filename_templates_use_job_fields():
    t = ticket()
    assert filename("{order_id}_{job_id}_{sku}_q{quantity}.pdf", t) == "5001_J-1_FLYER-A5_q250.pdf"
    assert filename("{storefront}-{type}-{part}-{role}.pdf", t, 2, "cover") == (
        "acme-static-2-cover.pdf")


@pytest.mark.parametrize(("raw", "safe"), [
    ("a/b.pdf", "a_b.pdf"),
    ("..pdf", "_pdf"),
    ("../../etc/passwd", "____etc_passwd"),
    (".hidden.pdf", "hidden.pdf"),
    ("x\x00y\n.pdf", "x_y_.pdf"),
    ("", "J-1.pdf"),
    ("...", "_."),
    (". .", "J-1.pdf"),
])
def test_names_are_made_safe(raw, safe):
    assert sanitise(raw, fallback="J-1.pdf") == safe


@pytest.mark.parametrize("long", ["x" * 300, "é" * 200, "x" * 250 + "é" * 20])
def test_long_names_keep_pdf_fit_with_their_temp_name_and_never_collide(long: str):
    a = filename("{job_id}_" + long + "_{quantity}.pdf", ticket())
    b = filename("{job_id}_" + long + "_{quantity}0.pdf", ticket())
    for name in (a, b):
        assert name.endswith(".pdf")
        assert len(f".{name[:-4]}.json.part".encode()) <= 255
        name.encode().decode("utf-8")  # cut on a character boundary
    assert a != b


def test_sidecars_stay_valid_whatever_the_ticket_holds():
    import json as json_module
    import xml.etree.ElementTree as ET

    from outputd.pipeline.sidecar import render

    t = ticket().model_copy(update={"product": ticket().product.model_copy(
        update={"name": "A5 \x1b[2Kflyer\x0c\x00 & <b>"})})
    root = ET.fromstring(render("xml", t, "x.pdf"))
    assert root.get("DescriptiveName") == "A5  [2Kflyer   & <b>"
    json_module.loads(render("json", t, "x.pdf"))

