"""ComfyUI graphs in API format: the built-in graph, user workflows, and ComfyUI's complaints.

Placeholder syntax: a string value ``"{{name}}"`` anywhere in the graph is replaced by the typed
value (a number stays a number); ``{{name}}`` inside a longer string is replaced by its text, so
``"masterpiece, {{prompt}}"`` works too. The names are those of ``PLACEHOLDERS``. A workflow must
use ``{{image}}`` (the uploaded input, usually in a ``LoadImage`` node) and have an output node
(``SaveImage``); ``{{samples}}`` is optional (e.g. ``RepeatLatentBatch.amount``), and a workflow
without it is treated as producing one image.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bot.i18n import Msg
from bot.redact import redact

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_]+)\s*\}\}")

PLACEHOLDERS: dict[str, str] = {
    "prompt": "the positive prompt (text)",
    "negative_prompt": "the negative prompt (text)",
    "seed": "the seed (integer)",
    "steps": "sampling steps (integer)",
    "cfg": "guidance scale (number)",
    "denoise": "denoising strength 0..1 (number)",
    "image": "the uploaded input image's name, for LoadImage (text)",
    "checkpoint": "the checkpoint file name (text)",
    "width": "output width in pixels (integer)",
    "height": "output height in pixels (integer)",
    "samples": "number of images (integer)",
}

OUTPUT_NODES = frozenset({"SaveImage", "PreviewImage", "SaveAnimatedWEBP", "SaveAnimatedPNG"})


@dataclass(frozen=True, slots=True)
class WorkflowValues:
    """The values placeholders are replaced with."""

    prompt: str
    negative_prompt: str
    seed: int
    steps: int
    cfg: float
    denoise: float
    image: str
    checkpoint: str
    width: int
    height: int
    samples: int


class WorkflowError(ValueError):
    """A workflow file that cannot be used; the message says why."""


class Workflow:
    """An API-format graph (node id → ``{class_type, inputs}``) with ``{{name}}`` placeholders."""

    def __init__(self, graph: dict[str, Any], *, source: str = "workflow") -> None:
        _check_api_format(graph, source)
        self.graph = graph
        self.source = source
        self.placeholders = frozenset(_find_placeholders(graph))
        unknown = sorted(self.placeholders - PLACEHOLDERS.keys())
        if unknown:
            raise WorkflowError(
                f"{source}: unknown placeholder {{{{{unknown[0]}}}}} "
                f"(known: {', '.join(PLACEHOLDERS)})"
            )
        if "image" not in self.placeholders:
            raise WorkflowError(f"{source}: the workflow must use {{{{image}}}} for the input")

    @classmethod
    def load(cls, path: Path) -> Workflow:
        """Read a workflow saved with ComfyUI's "Save (API Format)"."""
        try:
            graph = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise WorkflowError(f"cannot read {path}: {exc.strerror}") from exc
        except (ValueError, UnicodeDecodeError) as exc:
            raise WorkflowError(f"{path} is not valid JSON: {exc}") from exc
        return cls(graph, source=str(path))

    @classmethod
    def builtin(cls, *, sampler: str = "euler", scheduler: str = "normal",
                upscale_method: str = "lanczos") -> Workflow:
        """Checkpoint → load image → scale → VAE encode → batch → KSampler → VAE decode → save."""
        graph: dict[str, Any] = {
            "4": {"class_type": "CheckpointLoaderSimple",
                  "inputs": {"ckpt_name": "{{checkpoint}}"}},
            "10": {"class_type": "LoadImage", "inputs": {"image": "{{image}}"}},
            "12": {"class_type": "ImageScale",
                   "inputs": {"image": ["10", 0], "upscale_method": upscale_method,
                              "width": "{{width}}", "height": "{{height}}", "crop": "center"}},
            "11": {"class_type": "VAEEncode", "inputs": {"pixels": ["12", 0], "vae": ["4", 2]}},
            "13": {"class_type": "RepeatLatentBatch",
                   "inputs": {"samples": ["11", 0], "amount": "{{samples}}"}},
            "6": {"class_type": "CLIPTextEncode",
                  "inputs": {"text": "{{prompt}}", "clip": ["4", 1]}},
            "7": {"class_type": "CLIPTextEncode",
                  "inputs": {"text": "{{negative_prompt}}", "clip": ["4", 1]}},
            "3": {"class_type": "KSampler",
                  "inputs": {"seed": "{{seed}}", "steps": "{{steps}}", "cfg": "{{cfg}}",
                             "sampler_name": sampler, "scheduler": scheduler,
                             "denoise": "{{denoise}}", "model": ["4", 0], "positive": ["6", 0],
                             "negative": ["7", 0], "latent_image": ["13", 0]}},
            "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
            "9": {"class_type": "SaveImage",
                  "inputs": {"filename_prefix": "img2img-bot", "images": ["8", 0]}},
        }
        return cls(graph, source="built-in workflow")

    def uses(self, name: str) -> bool:
        return name in self.placeholders

    def fill(self, values: WorkflowValues) -> dict[str, Any]:
        """A new graph with every placeholder replaced; the stored graph is left untouched."""
        table: dict[str, str | int | float] = asdict(values)
        filled: dict[str, Any] = _substitute(self.graph, table)
        return filled


def _check_api_format(graph: Any, source: str) -> None:
    if not isinstance(graph, dict) or not graph:
        raise WorkflowError(f"{source}: expected a JSON object of nodes (API format)")
    if "nodes" in graph and "links" in graph:
        raise WorkflowError(
            f"{source} is in ComfyUI's UI format; export it with \"Save (API Format)\""
        )
    for node_id, node in graph.items():
        if not isinstance(node, dict) or not isinstance(node.get("class_type"), str) \
                or not isinstance(node.get("inputs"), dict):
            raise WorkflowError(f"{source}: node {node_id!r} needs a class_type and inputs")
    if not any(node["class_type"] in OUTPUT_NODES for node in graph.values()):
        raise WorkflowError(f"{source}: the workflow has no SaveImage node")


def _find_placeholders(value: Any) -> set[str]:
    if isinstance(value, str):
        return set(PLACEHOLDER.findall(value))
    if isinstance(value, dict):
        return set().union(*(_find_placeholders(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(_find_placeholders(v) for v in value))
    return set()


def _substitute(value: Any, table: dict[str, str | int | float]) -> Any:
    # Substitution works on parsed values, never on JSON text, so a prompt holding quotes or
    # braces cannot break the graph, and one pass means a prompt's own "{{seed}}" stays text.
    if isinstance(value, str):
        whole = PLACEHOLDER.fullmatch(value)
        if whole:
            return table[whole.group(1)]
        return PLACEHOLDER.sub(lambda m: str(table[m.group(1)]), value)
    if isinstance(value, dict):
        return {k: _substitute(v, table) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, table) for v in value]
    return value


# The messages below quote ComfyUI's own words (its validation and exception texts) as
# parameters: they reach the user as the server wrote them, untranslated.

def validation_message(body: Any) -> Msg:
    """The message for a 400 ``/prompt`` answer (``error`` plus ``node_errors``)."""
    problems: list[dict[str, str]] = []
    for node_id, node in as_object(as_object(body).get("node_errors")).items():
        node = as_object(node)
        for item in node.get("errors") or []:
            problems.append({"problem": _describe(as_object(item)), "node": _words(node_id),
                             "kind": _words(node.get("class_type", "?"))})
    if len(problems) > 1:
        return Msg("error-comfyui-nodes", {**problems[0], "more": len(problems) - 1})
    if problems:
        return Msg("error-comfyui-node", problems[0])
    error = as_object(body).get("error")
    problem = _describe(error) if isinstance(error, dict) else _words(error or "")
    return Msg("error-comfyui-workflow", {"problem": problem}) if problem else Msg(
        "error-comfyui-rejected")


def execution_message(data: dict[str, Any]) -> Msg:
    """The message for an ``execution_error`` event or history message."""
    message = str(data.get("exception_message") or data.get("exception_type") or "")
    where = {"node": _words(data.get("node_id", "?")), "kind": _words(data.get("node_type", "?"))}
    message = (message.strip().splitlines() or [""])[0]  # the rest is detail
    if not message:
        return Msg("error-comfyui-failed-in", where)
    return Msg("error-comfyui-failed-with", {**where, "message": _words(message)})


def history_error(status: dict[str, Any]) -> Msg:
    for item in status.get("messages") or []:
        if isinstance(item, list) and len(item) == 2 and item[0] == "execution_error":
            return execution_message(item[1])
    return Msg("error-comfyui-failed")


def _describe(item: dict[str, Any]) -> str:
    message = str(item.get("message") or item.get("type") or "")
    details = str(item.get("details") or "")
    if len(details) > 160:  # "not in [...]" lists every option the server has
        details = details[:159].rstrip() + "…"
    return _words(f"{message}: {details}" if details and message else message or details)


def _words(text: object) -> str:
    """The server's text on one line, secrets removed, short enough for a chat message."""
    flat = " ".join(redact(str(text)).split())
    if len(flat) > 200:
        flat = flat[:199].rstrip() + "…"
    return flat.rstrip(".")


def as_object(value: Any) -> dict[str, Any]:
    """``value`` when it is a JSON object, else empty (a malformed answer reads as missing)."""
    return value if isinstance(value, dict) else {}
