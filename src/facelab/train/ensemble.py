"""Average several facelab attribute models into one ONNX file (``facelab train ensemble``).

Models trained with different seeds make different mistakes; averaging their
probabilities (and their ages) is more accurate than any one of them.  The
members must take the same input (same chip size, colour and framing, or the
same embedding) and predict the same tasks with the same classes.  The result
is an ordinary attributes model: one graph whose input feeds every member and
whose outputs are the element-wise means of the members' outputs, so it runs
wherever a single model runs (onnxruntime only).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..attributes.onnx_model import read_metadata

_SAME = ("input", "tasks", "chip", "prefix")  # prefix: fine-tuned heads continue the same frozen layers


def merge_models(
    paths: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    *,
    name: str | None = None,
    tta: list[list[float]] | None = None,
    half: bool = False,
) -> Path:
    """Write ``out``: one attributes ONNX model averaging the outputs of the models at ``paths``.

    ``tta``: test-time warps of the chip (``[dx, dy, scale, angle]``, see
    :func:`~facelab.attributes.onnx_model.tta_warps`) stored in the metadata; facelab averages over them.
    ``half``: store the weights as float16 (half the file; each is cast back to float32 when the
    session loads, so inference still computes in float32).
    """
    import onnx
    from onnx import compose, helper

    paths = [Path(p) for p in paths]
    if len(paths) < 2:
        raise InputError("an ensemble needs at least two models")
    metas = [read_metadata(p) for p in paths]
    for p, m in zip(paths[1:], metas[1:]):
        for key in _SAME:
            if m.get(key) != metas[0].get(key):
                raise InputError(f"{p} differs from {paths[0]} in {key!r}: {m.get(key)!r} vs {metas[0].get(key)!r} (members must share input and classes)")
    warps = tta if tta and len(tta) > 1 else None  # the identity alone is no augmentation
    if warps and metas[0].get("input", "chip") != "chip":
        raise InputError("test-time warps apply to chip models only")
    models = [onnx.load(str(p)) for p in paths]
    tasks = list(metas[0]["tasks"])
    for p, m in zip(paths, models):
        outs = [o.name for o in m.graph.output]
        if len(m.graph.input) != 1:
            raise InputError(f"{p}: expected one input, found {len(m.graph.input)}")
        if sorted(outs) != sorted(tasks):
            raise InputError(f"{p}: outputs {outs} do not match its tasks {tasks}")
    first = models[0].graph
    inp = first.input[0]
    nodes, inits, value_info = [], [], []
    for i, m in enumerate(models):
        pm = compose.add_prefix(m, prefix=f"m{i}/")
        g = pm.graph
        nodes.append(helper.make_node("Identity", [inp.name], [g.input[0].name], name=f"m{i}/input"))
        nodes.extend(g.node)
        inits.extend(g.initializer)
        value_info.extend(g.value_info)
    if half:
        casts, inits = _half_weights(inits)
        nodes = casts + nodes
    for t in tasks:
        nodes.append(helper.make_node("Mean", [f"m{i}/{t}" for i in range(len(models))], [t], name=f"mean/{t}"))
    outputs = {o.name: o for o in first.output}
    graph = helper.make_graph(nodes, "facelab_ensemble", [inp], [outputs[t] for t in tasks], initializer=inits, value_info=value_info)
    opset = max(o.version for m in models for o in m.opset_import if o.domain in ("", "ai.onnx"))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="facelab")
    model.ir_version = max(m.ir_version for m in models)
    onnx.checker.check_model(model)
    meta: dict[str, Any] = {k: v for k, v in metas[0].items() if k != "trained"}
    meta["name"] = name or Path(out).stem
    if warps:
        meta["tta"] = [[float(v) for v in w] for w in warps]
    if half:
        meta["weights"] = "float16"
    meta["ensemble"] = [
        {"file": p.name, "sha256": hashlib.sha256(p.read_bytes()).hexdigest(), "name": m.get("name"), "trained": m.get("trained", {})}
        for p, m in zip(paths, metas)
    ]
    entry = model.metadata_props.add()
    entry.key, entry.value = "facelab", json.dumps(meta, sort_keys=True)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    onnx.save(model, str(tmp))
    os.replace(tmp, out)
    return out


def half_weights(model):
    """``model`` with its float32 weights stored as float16 (cast back to float32 when a session loads it)."""
    import onnx

    g = model.graph
    casts, inits = _half_weights(list(g.initializer))
    nodes = casts + list(g.node)
    del g.initializer[:]
    g.initializer.extend(inits)
    del g.node[:]
    g.node.extend(nodes)
    onnx.checker.check_model(model)
    return model


def _half_weights(inits: list) -> tuple[list, list]:
    """float32 initializers with more than 16 values -> float16 copies plus Cast nodes restoring the names."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    casts, out = [], []
    for t in inits:
        arr = numpy_helper.to_array(t) if t.data_type == TensorProto.FLOAT else None
        if arr is None or arr.size <= 16:
            out.append(t)
            continue
        if np.abs(arr).max(initial=0) > 6e4:
            raise InputError(f"weight {t.name} exceeds the float16 range; merge without --half")
        out.append(numpy_helper.from_array(arr.astype(np.float16), name=t.name + "/f16"))
        casts.append(helper.make_node("Cast", [t.name + "/f16"], [t.name], to=TensorProto.FLOAT, name=t.name + "/cast"))
    return casts, out
