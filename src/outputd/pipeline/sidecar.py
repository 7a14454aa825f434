"""Sidecar job tickets written beside a delivered PDF: JSON, or a minimal JDF 1.4 (XML)."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import PurePosixPath
from urllib.parse import quote

from outputd.pipeline.geometry import MM_PER_PT
from outputd.tickets import JobTicket

SUFFIX = {"json": ".json", "xml": ".xml"}
JDF_NS = "http://www.CIP4.org/JDFSchema_1_1"
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def sidecar_name(pdf_name: str, kind: str) -> str:
    """The PDF's final name with `.pdf` replaced by `.json` or `.xml`."""
    stem = pdf_name[:-4] if pdf_name.lower().endswith(".pdf") else pdf_name
    return stem + SUFFIX[kind]


def render(kind: str, ticket: JobTicket, pdf_name: str) -> bytes:
    """The sidecar for one delivered PDF."""
    if kind == "json":
        body = {
            "job_id": ticket.job_id,
            "order_id": ticket.order_id,
            "storefront": ticket.storefront,
            "sku": ticket.product.sku,
            "quantity": ticket.quantity,
            "attributes": ticket.attributes,
            "product": ticket.product.model_dump(mode="json", exclude_none=True),
            "files": [pdf_name],
        }
        return (json.dumps(body, indent=2, ensure_ascii=False, allow_nan=False)
                + "\n").encode()
    return _jdf(ticket, pdf_name)


def _xml(text: str) -> str:
    """Text XML 1.0 can hold: a control character (other than tab and line breaks) or a
    lone surrogate would make the JDF not well-formed; each becomes a space."""
    return _NOT_XML.sub(" ", text)


def _jdf(ticket: JobTicket, pdf_name: str) -> bytes:
    ET.register_namespace("", JDF_NS)
    q = f"{{{JDF_NS}}}"
    width = ticket.product.trim.width_mm / MM_PER_PT
    height = ticket.product.trim.height_mm / MM_PER_PT
    root = ET.Element(f"{q}JDF", {
        "ID": f"JDF_{ticket.job_id}", "JobID": ticket.job_id, "JobPartID": ticket.order_id,
        "Type": "Product", "Status": "Waiting", "Version": "1.4",
        "DescriptiveName": _xml(ticket.product.name),
    })
    pool = ET.SubElement(root, f"{q}ResourcePool")
    runlist = ET.SubElement(pool, f"{q}RunList",
                            {"ID": "RL1", "Class": "Parameter", "Status": "Available"})
    element = ET.SubElement(runlist, f"{q}LayoutElement")
    ET.SubElement(element, f"{q}FileSpec", {
        "URL": quote(PurePosixPath(pdf_name).name), "MimeType": "application/pdf"})
    ET.SubElement(pool, f"{q}Component", {
        "ID": "C1", "Class": "Quantity", "Status": "Unavailable",
        "ComponentType": "FinalProduct", "Amount": str(ticket.quantity),
        "Dimensions": f"{width:.2f} {height:.2f} 0",
    })
    links = ET.SubElement(root, f"{q}ResourceLinkPool")
    ET.SubElement(links, f"{q}RunListLink", {"rRef": "RL1", "Usage": "Input"})
    ET.SubElement(links, f"{q}ComponentLink",
                  {"rRef": "C1", "Usage": "Output", "Amount": str(ticket.quantity)})
    ET.indent(root)
    return ET.tostring(root, encoding="UTF-8", xml_declaration=True) + b"\n"
