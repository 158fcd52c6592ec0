"""OpenAPI schemas of the responses: the ``to_dict()`` forms of :mod:`facelab.types` and the gallery records."""

from __future__ import annotations

from typing import Any


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _obj(required: list[str], props: dict[str, Any], extra: bool = False) -> dict[str, Any]:
    return {"type": "object", "required": required, "properties": props, "additionalProperties": extra}


_num = {"type": "number"}
_str = {"type": "string"}
_int = {"type": "integer"}
_nullable_str = {"type": ["string", "null"]}

SCHEMAS: dict[str, dict[str, Any]] = {
    "Box": _obj(["left", "top", "right", "bottom"], {k: _num for k in ("left", "top", "right", "bottom")}),
    "Landmarks": _obj(
        ["model", "scheme", "points"],
        {"model": _str, "scheme": _str, "points": {"type": "array", "items": {"type": "array", "items": _num}}},
    ),
    "Embedding": _obj(["model", "vector"], {"model": _str, "vector": {"type": "array", "items": _num}}),
    "Attribute": _obj(
        ["value", "model"],
        {
            "value": {"type": ["string", "number"]},
            "model": _str,
            "confidence": _num,
            "probabilities": {"type": "object", "additionalProperties": _num},
        },
    ),
    "Candidate": _obj(["name", "distance"], {"name": _str, "distance": _num}),
    "Identity": _obj(
        ["name", "distance", "threshold", "candidates"],
        {
            "name": {"type": "string", "description": "the person, or 'unknown'"},
            "distance": _num,
            "threshold": _num,
            "candidates": {"type": "array", "items": _ref("Candidate")},
        },
    ),
    "Quality": _obj(
        ["score", "sharpness", "exposure", "size"],
        {
            "score": {"type": "number", "description": "0-1: the learned score when it ran, else the product of the parts"},
            "sharpness": _num, "exposure": _num, "size": _num, "pose": _num,
            "yaw": _num, "pitch": _num, "roll": _num, "learned": _num, "model": _str,
        },
    ),
    "CoveredFace": _obj(
        ["center", "size", "angle", "shape", "method", "face"],
        {
            "center": {"type": "array", "items": _num}, "size": {"type": "array", "items": _num}, "angle": _num,
            "shape": {"type": "string", "enum": ["ellipse", "rect"]}, "method": _str, "face": {"type": "object"}, "name": _str,
        },
    ),
    "Anonymized": _obj(
        ["source", "width", "height", "covered", "kept", "image"],
        {
            "source": _nullable_str, "width": _int, "height": _int,
            "covered": {"type": "array", "items": _ref("CoveredFace")},
            "kept": {"type": "array", "items": {"type": "object"}},
            "image": {"type": "string", "description": "the anonymised image as a data URL (PNG or JPEG)"},
        },
    ),
    "Face": _obj(
        ["box", "score", "detector", "rotation"],
        {
            "box": _ref("Box"),
            "score": _num,
            "detector": _str,
            "rotation": _num,
            "keypoints": _ref("Landmarks"),
            "landmarks": _ref("Landmarks"),
            "embedding": _ref("Embedding"),
            "attributes": {"type": "object", "additionalProperties": _ref("Attribute")},
            "identity": _ref("Identity"),
            "quality": _ref("Quality"),
        },
    ),
    "ImageResult": _obj(
        ["source", "width", "height", "faces"],
        {
            "source": _str,
            "width": _int,
            "height": _int,
            "faces": {"type": "array", "items": _ref("Face")},
            "annotated_image": {"type": "string", "description": "JPEG data URL of the image with the faces drawn (when annotate=true)"},
        },
    ),
    "Verification": _obj(
        ["same", "distance", "threshold", "model", "metric"],
        {
            "same": {"type": "boolean"},
            "distance": _num,
            "threshold": _num,
            "model": _str,
            "metric": _str,
            "face1": _ref("Face"),
            "face2": _ref("Face"),
        },
    ),
    "EnrollResult": _obj(
        ["source", "person", "status", "id", "n_faces"],
        {
            "source": _str,
            "person": _str,
            "status": {"type": "string", "enum": ["added", "duplicate", "conflict", "no_face", "error", "low_quality", "not_best"]},
            "id": {"type": ["integer", "null"]},
            "n_faces": _int,
            "note": _str,
            "error_code": _str,
            "quality": _num,
        },
    ),
    "Person": _obj(["name", "count", "created"], {"name": _str, "count": _int, "created": _str}),
    "EnrollResponse": _obj(["person", "results"], {"person": _ref("Person"), "results": {"type": "array", "items": _ref("EnrollResult")}}),
    "StoredEmbedding": _obj(
        ["id", "person", "model", "content_hash"],
        {
            "id": _int,
            "person": _str,
            "model": _str,
            "content_hash": _str,
            "source": _nullable_str,
            "box": {"type": ["object", "null"]},
            "n_faces": {"type": ["integer", "null"]},
            "created": _str,
        },
    ),
    "PersonDetail": _obj(
        ["person", "embeddings"], {"person": _ref("Person"), "embeddings": {"type": "array", "items": _ref("StoredEmbedding")}}
    ),
    "Gallery": _obj(["info", "people"], {"info": {"type": "object"}, "people": {"type": "array", "items": _ref("Person")}}),
    "Removed": _obj(["name", "removed_embeddings"], {"name": _str, "removed_embeddings": _int}),
    "Error": _obj(
        ["error"],
        {
            "error": _obj(
                ["code", "message"],
                {"code": {"type": "string", "description": "stable machine-readable code"}, "message": _str, "request_id": _str},
            )
        },
    ),
}


def json_response(name: str, description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(name)}}}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """Documented error answers: always 4XX and 503, plus the given ones."""
    out: dict[int | str, dict[str, Any]] = {s: json_response("Error", "error") for s in statuses}
    out["4XX"] = json_response("Error", "bad request: the error's code says why")
    out[503] = json_response("Error", "not ready, timed out, or the gallery/models are unavailable")
    return out


__all__ = ["SCHEMAS", "error_responses", "json_response"]
