"""A fake ComfyUI server: upload, prompt validation, a sequential queue, websocket events, history.

It follows ComfyUI's ``server.py``/``execution.py``: graphs are validated node by node with the
same error shapes, prompts run one at a time, events go to the socket of the prompt's
``client_id``, and results are read from ``/history`` and ``/view``. Knobs for tests:
``fail_class`` (a node class that raises during execution), ``hold`` (running prompts wait for
it, or for ``/interrupt``), ``drop_socket`` (close sockets once execution starts), and
``legacy_models`` (no ``/models`` route, as in older builds), and ``broken`` (routes that answer
like a misconfigured proxy).
"""

from __future__ import annotations

import asyncio
import io
import struct
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web
from PIL import Image

from tests.fakes.server import FakeServer, json_response, png_bytes

SAMPLERS = ["euler", "euler_ancestral", "dpmpp_2m", "dpmpp_2m_sde", "ddim"]
SCHEDULERS = ["normal", "karras", "exponential", "sgm_uniform", "simple", "ddim_uniform"]
UPSCALE = ["nearest-exact", "bilinear", "area", "bicubic", "lanczos"]


@dataclass
class Spec:
    """A widget input: INT/FLOAT with bounds, STRING, or a COMBO with its options."""

    kind: str
    low: float | None = None
    high: float | None = None
    options: list[str] | str | None = None  # "checkpoints"/"inputs" are looked up live


@dataclass
class NodeType:
    inputs: dict[str, Spec | str]  # a str is the type a link must deliver
    outputs: tuple[str, ...] = ()
    output_node: bool = False


NODE_TYPES: dict[str, NodeType] = {
    "CheckpointLoaderSimple": NodeType({"ckpt_name": Spec("COMBO", options="checkpoints")},
                                       ("MODEL", "CLIP", "VAE")),
    "LoadImage": NodeType({"image": Spec("COMBO", options="inputs")}, ("IMAGE", "MASK")),
    "ImageScale": NodeType({"image": "IMAGE", "upscale_method": Spec("COMBO", options=UPSCALE),
                            "width": Spec("INT", 0, 16384), "height": Spec("INT", 0, 16384),
                            "crop": Spec("COMBO", options=["disabled", "center"])}, ("IMAGE",)),
    "VAEEncode": NodeType({"pixels": "IMAGE", "vae": "VAE"}, ("LATENT",)),
    "RepeatLatentBatch": NodeType({"samples": "LATENT", "amount": Spec("INT", 1, 64)},
                                  ("LATENT",)),
    "CLIPTextEncode": NodeType({"text": Spec("STRING"), "clip": "CLIP"}, ("CONDITIONING",)),
    "KSampler": NodeType({
        "model": "MODEL", "seed": Spec("INT", 0, 2**64 - 1), "steps": Spec("INT", 1, 10000),
        "cfg": Spec("FLOAT", 0.0, 100.0), "sampler_name": Spec("COMBO", options=SAMPLERS),
        "scheduler": Spec("COMBO", options=SCHEDULERS), "positive": "CONDITIONING",
        "negative": "CONDITIONING", "latent_image": "LATENT", "denoise": Spec("FLOAT", 0.0, 1.0),
    }, ("LATENT",)),
    "VAEDecode": NodeType({"samples": "LATENT", "vae": "VAE"}, ("IMAGE",)),
    "SaveImage": NodeType({"images": "IMAGE", "filename_prefix": Spec("STRING")},
                          output_node=True),
    "PreviewImage": NodeType({"images": "IMAGE"}, output_node=True),
}


@dataclass
class Prompt:
    prompt_id: str
    number: int
    graph: dict[str, Any]
    client_id: str | None
    interrupted: bool = False
    messages: list[list[Any]] = field(default_factory=list)


class FakeComfyUI(FakeServer):
    """ComfyUI's HTTP and websocket API on 127.0.0.1."""

    def __init__(self, *, checkpoints: list[str] | None = None, step_delay: float = 0.001) -> None:
        super().__init__()
        self.checkpoints = checkpoints or ["v1-5-pruned-emaonly.safetensors",
                                           "sd_xl_base_1.0.safetensors"]
        self.step_delay = step_delay
        self.fail_class: str | None = None
        self.hold: asyncio.Event | None = None
        self.drop_socket = False
        self.legacy_models = False
        self.broken: set[str] = set()  # routes ("prompt", "history") that answer garbage
        self.uploads: dict[str, bytes] = {}
        self.prompts: list[dict[str, Any]] = []  # every graph queued, as received
        self.history: dict[str, dict[str, Any]] = {}
        self.outputs: dict[tuple[str, str], bytes] = {}  # (type, filename) -> bytes
        self.sockets: dict[str, web.WebSocketResponse] = {}
        self.interrupts: list[Any] = []
        self.deleted: list[str] = []
        self.running: Prompt | None = None
        self.pending: list[Prompt] = []
        self._queue: asyncio.Queue[Prompt] = asyncio.Queue()
        self._counter = 0
        self._worker_task: asyncio.Task[None] | None = None

    def routes(self, app: web.Application) -> None:
        for prefix in ("", "/api"):
            app.router.add_post(prefix + "/upload/image", self.upload)
            app.router.add_post(prefix + "/prompt", self.queue_prompt)
            app.router.add_get(prefix + "/ws", self.websocket)
            app.router.add_get(prefix + "/history/{prompt_id}", self.get_history)
            app.router.add_get(prefix + "/view", self.view)
            app.router.add_get(prefix + "/queue", self.get_queue)
            app.router.add_post(prefix + "/queue", self.post_queue)
            app.router.add_post(prefix + "/interrupt", self.interrupt)
            app.router.add_get(prefix + "/system_stats", self.system_stats)
            app.router.add_get(prefix + "/models/{folder}", self.models)
            app.router.add_get(prefix + "/object_info/{node}", self.object_info)
        app.on_startup.append(self._start_worker)
        app.on_cleanup.append(self._stop_worker)

    async def _start_worker(self, app: web.Application) -> None:
        self._worker_task = asyncio.get_running_loop().create_task(self._worker())

    async def _stop_worker(self, app: web.Application) -> None:
        if self._worker_task is not None:
            self._worker_task.cancel()
        for ws in list(self.sockets.values()):
            await ws.close()

    # -- HTTP routes -----------------------------------------------------------------------

    async def upload(self, request: web.Request) -> web.Response:
        form = await request.post()
        image = form.get("image")
        if not isinstance(image, web.FileField) or not image.filename:
            return web.Response(status=400)
        if form.get("type", "input") != "input":
            return web.Response(status=400)
        data = image.file.read()
        name = image.filename
        if name in self.uploads and form.get("overwrite") not in ("true", "1") \
                and self.uploads[name] != data:
            stem, _, ext = name.rpartition(".")
            name = f"{stem} (1).{ext}"
        self.uploads[name] = data
        return json_response({"name": name, "subfolder": "", "type": "input"})

    async def queue_prompt(self, request: web.Request) -> web.Response:
        body = await request.json()
        if "prompt" in self.broken:
            return json_response({"number": 1})
        if "prompt" not in body:
            return json_response({"error": {"type": "no_prompt", "message": "No prompt provided",
                                            "details": "", "extra_info": {}},
                                  "node_errors": []}, 400)
        graph = body["prompt"]
        self.prompts.append(graph)
        error, node_errors = self.validate(graph)
        if error is not None:
            return json_response({"error": error, "node_errors": node_errors}, 400)
        self._counter += 1
        prompt = Prompt(str(uuid.uuid4()), self._counter, graph, body.get("client_id"))
        self.pending.append(prompt)
        await self._queue.put(prompt)
        await self._broadcast_status()
        return json_response({"prompt_id": prompt.prompt_id, "number": prompt.number,
                              "node_errors": {}})

    async def websocket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        client_id = request.query.get("clientId") or uuid.uuid4().hex
        self.sockets[client_id] = ws
        await ws.send_json({"type": "status", "data": {"status": self._exec_info(),
                                                       "sid": client_id}})
        async for message in ws:
            if message.type is WSMsgType.ERROR:
                break
        self.sockets.pop(client_id, None)
        return ws

    async def get_history(self, request: web.Request) -> web.Response:
        prompt_id = request.match_info["prompt_id"]
        if "history" in self.broken:
            return web.Response(text="<html>502 Bad Gateway</html>", content_type="text/html")
        entry = self.history.get(prompt_id)
        return json_response({prompt_id: entry} if entry else {})

    async def view(self, request: web.Request) -> web.Response:
        filename = request.query.get("filename", "")
        if ".." in filename or filename.startswith("/"):
            return web.Response(status=403)
        data = self.outputs.get((request.query.get("type", "output"), filename))
        if data is None:
            return web.Response(status=404)
        return web.Response(body=data, content_type="image/png",
                            headers={"Content-Disposition": f'filename="{filename}"'})

    async def get_queue(self, request: web.Request) -> web.Response:
        def row(p: Prompt) -> list[Any]:
            return [p.number, p.prompt_id, p.graph, {"client_id": p.client_id}, []]
        running = [row(self.running)] if self.running else []
        return json_response({"queue_running": running,
                              "queue_pending": [row(p) for p in self.pending]})

    async def post_queue(self, request: web.Request) -> web.Response:
        body = await request.json()
        for prompt_id in body.get("delete", []):
            self.deleted.append(prompt_id)
            self.pending = [p for p in self.pending if p.prompt_id != prompt_id]
        return web.Response(status=200)

    async def interrupt(self, request: web.Request) -> web.Response:
        body = await request.json() if request.can_read_body else {}
        self.interrupts.append(body)
        target = body.get("prompt_id")
        if self.running and target in (None, self.running.prompt_id):
            self.running.interrupted = True
            if self.hold is not None:
                self.hold.set()
        return web.Response(status=200)

    async def system_stats(self, request: web.Request) -> web.Response:
        return json_response({
            "system": {"os": "posix", "ram_total": 64 << 30, "ram_free": 40 << 30,
                       "comfyui_version": "0.3.40", "python_version": "3.11.9",
                       "pytorch_version": "2.7.0+cu126", "embedded_python": False,
                       "argv": ["main.py"]},
            "devices": [{"name": "cuda:0 NVIDIA GeForce RTX 4090 : cudaMallocAsync",
                         "type": "cuda", "index": 0, "vram_total": 24 << 30,
                         "vram_free": 20 << 30, "torch_vram_total": 0, "torch_vram_free": 0}]})

    async def models(self, request: web.Request) -> web.Response:
        if self.legacy_models or request.match_info["folder"] != "checkpoints":
            return web.Response(status=404)
        return json_response(self.checkpoints)

    async def object_info(self, request: web.Request) -> web.Response:
        if request.match_info["node"] != "CheckpointLoaderSimple":
            return web.Response(status=404)
        return json_response({"CheckpointLoaderSimple": {
            "input": {"required": {"ckpt_name": ["COMBO", {"options": self.checkpoints}]}},
            "output": ["MODEL", "CLIP", "VAE"], "name": "CheckpointLoaderSimple"}})

    # -- validation (execution.validate_prompt) --------------------------------------------

    def validate(self, graph: Any) -> tuple[dict[str, Any] | None, Any]:
        """ComfyUI's top-level ``error`` and ``node_errors``, or ``(None, {})`` when valid."""
        def top(kind: str, message: str, details: str = "") -> dict[str, Any]:
            return {"type": kind, "message": message, "details": details, "extra_info": {}}

        if not isinstance(graph, dict):
            return top("invalid_prompt", "Invalid prompt", "prompt is not a dict"), []
        for node_id, node in graph.items():
            if not isinstance(node, dict) or "class_type" not in node:
                return top("invalid_prompt", "Cannot execute because a node is missing the "
                           "class_type property.", f"Node ID '#{node_id}'"), []
            if node["class_type"] not in NODE_TYPES:
                return top("invalid_prompt", f"Cannot execute because node "
                           f"{node['class_type']} does not exist.", f"Node ID '#{node_id}'"), []
        outputs = [i for i, n in graph.items() if NODE_TYPES[n["class_type"]].output_node]
        if not outputs:
            return top("prompt_no_outputs", "Prompt has no outputs"), []
        node_errors: dict[str, Any] = {}
        for node_id, node in graph.items():
            errors = self._node_errors(graph, node)
            if errors:
                node_errors[node_id] = {"errors": errors, "dependent_outputs": outputs,
                                        "class_type": node["class_type"]}
        if node_errors:
            first = next(iter(node_errors.values()))["errors"][0]
            details = f"{first['message']}: {first['details']}"
            return top("prompt_outputs_failed_validation", "Prompt outputs failed validation",
                       details), node_errors
        return None, {}

    def _node_errors(self, graph: dict[str, Any], node: dict[str, Any]) -> list[dict[str, Any]]:
        spec = NODE_TYPES[node["class_type"]]
        inputs = node.get("inputs", {})
        errors = []

        def err(kind: str, message: str, details: str, name: str, value: Any) -> None:
            errors.append({"type": kind, "message": message, "details": details,
                           "extra_info": {"input_name": name, "received_value": value}})

        for name, want in spec.inputs.items():
            if name not in inputs:
                err("required_input_missing", "Required input is missing", name, name, None)
                continue
            value = inputs[name]
            if isinstance(want, str):
                source = graph.get(value[0]) if isinstance(value, list) and len(value) == 2 \
                    else None
                outs = NODE_TYPES[source["class_type"]].outputs if source else ()
                if source is None or not isinstance(value[1], int) or value[1] >= len(outs):
                    err("bad_linked_input", "Bad linked input, must be a length-2 list of "
                        "[node_id, slot_index]", f"{name}, {value}", name, value)
                elif outs[value[1]] != want:
                    err("return_type_mismatch", "Return type mismatch between linked nodes",
                        f"{name}, received_type({outs[value[1]]}) mismatch input_type({want})",
                        name, value)
                continue
            problem = self._widget_problem(spec=want, name=name, value=value)
            if problem:
                err(problem[0], problem[1], problem[2], name, value)
        return errors

    def _widget_problem(self, *, spec: Spec, name: str, value: Any) -> tuple[str, str, str] | None:
        if spec.kind in ("INT", "FLOAT"):
            convert = int if spec.kind == "INT" else float
            try:
                number = convert(value)
            except (TypeError, ValueError) as exc:
                return ("invalid_input_type", f"Failed to convert an input value to a "
                        f"{spec.kind} value", f"{name}, {value}, {exc}")
            if spec.low is not None and number < spec.low:
                return ("value_smaller_than_min", f"Value {number} smaller than min of "
                        f"{spec.low}", name)
            if spec.high is not None and number > spec.high:
                return ("value_bigger_than_max", f"Value {number} bigger than max of "
                        f"{spec.high}", name)
        elif spec.kind == "STRING" and not isinstance(value, str):
            return ("invalid_input_type", "Failed to convert an input value to a STRING value",
                    f"{name}, {value}")
        elif spec.kind == "COMBO":
            options = {"checkpoints": self.checkpoints, "inputs": list(self.uploads)}.get(
                str(spec.options), spec.options)
            assert isinstance(options, list)
            if spec.options == "inputs" and value not in options:
                return ("custom_validation_failed", "Custom validation failed for node",
                        f"{name} - Invalid image file: {value}")
            if value not in options:
                return ("value_not_in_list", "Value not in list",
                        f"{name}: '{value}' not in {options}")
        return None

    # -- execution (main.prompt_worker) ----------------------------------------------------

    def _exec_info(self) -> dict[str, Any]:
        remaining = len(self.pending) + (1 if self.running else 0)
        return {"exec_info": {"queue_remaining": remaining}}

    async def _broadcast_status(self) -> None:
        for ws in list(self.sockets.values()):
            if not ws.closed:
                await ws.send_json({"type": "status", "data": {"status": self._exec_info()}})

    async def _send(self, prompt: Prompt, kind: str, data: dict[str, Any]) -> None:
        data = {**data, "prompt_id": prompt.prompt_id}
        if kind in ("execution_start", "execution_cached", "execution_success",
                    "execution_error", "execution_interrupted"):
            prompt.messages.append([kind, data])
        ws = self.sockets.get(prompt.client_id or "")
        if ws is not None and not ws.closed:
            await ws.send_json({"type": kind, "data": data})

    async def _worker(self) -> None:
        while True:
            prompt = await self._queue.get()
            if prompt not in self.pending:
                continue  # deleted while pending
            self.pending.remove(prompt)
            self.running = prompt
            try:
                await self._execute(prompt)
            finally:
                self.running = None
                await self._broadcast_status()

    async def _execute(self, prompt: Prompt) -> None:
        await self._send(prompt, "execution_start", {})
        await self._send(prompt, "execution_cached", {"nodes": []})
        if self.drop_socket and prompt.client_id in self.sockets:
            await self.sockets[prompt.client_id].close()
        outputs: dict[str, Any] = {}
        executed: list[str] = []
        for node_id in self._order(prompt.graph):
            node = prompt.graph[node_id]
            await self._send(prompt, "executing", {"node": node_id, "display_node": node_id})
            if node["class_type"] == self.fail_class:
                await self._fail(prompt, node_id, node, executed)
                return
            if node["class_type"] == "KSampler" and await self._sample(
                    prompt, node_id, int(node["inputs"]["steps"])):
                await self._send(prompt, "execution_interrupted", {
                    "node_id": node_id, "node_type": "KSampler", "executed": executed})
                self._finish(prompt, outputs, "error")
                return
            if NODE_TYPES[node["class_type"]].output_node:
                outputs[node_id] = {"images": self._save(prompt.graph, node)}
                await self._send(prompt, "executed", {"node": node_id,
                                                      "output": outputs[node_id]})
            executed.append(node_id)
        await self._send(prompt, "execution_success", {})
        self._finish(prompt, outputs, "success")
        await self._send(prompt, "executing", {"node": None})

    async def _sample(self, prompt: Prompt, node_id: str, steps: int) -> bool:
        """Send progress (and one preview frame); True when interrupted."""
        for value in range(1, steps + 1):
            await asyncio.sleep(self.step_delay)
            if value == 1 and self.hold is not None:
                await self.hold.wait()
            if prompt.interrupted:
                return True
            await self._send(prompt, "progress", {"value": value, "max": steps, "node": node_id})
            ws = self.sockets.get(prompt.client_id or "")
            if value == 1 and ws is not None and not ws.closed:
                await ws.send_bytes(struct.pack(">II", 1, 2) + png_bytes((8, 8)))
        return False

    async def _fail(self, prompt: Prompt, node_id: str, node: dict[str, Any],
                    executed: list[str]) -> None:
        await self._send(prompt, "execution_error", {
            "node_id": node_id, "node_type": node["class_type"], "executed": executed,
            "exception_message": "Allocation on device 0 would exceed allowed memory. "
                                 "(out of memory)\nCurrently allocated     : 21.50 GiB\n",
            "exception_type": "torch.OutOfMemoryError",
            "traceback": ["  File \"execution.py\", line 327, in execute\n"],
            "current_inputs": {}, "current_outputs": {}})
        self._finish(prompt, {}, "error")

    def _finish(self, prompt: Prompt, outputs: dict[str, Any], status: str) -> None:
        self.history[prompt.prompt_id] = {
            "prompt": [prompt.number, prompt.prompt_id, prompt.graph,
                       {"client_id": prompt.client_id}, list(outputs)],
            "outputs": outputs,
            "status": {"status_str": status, "completed": status == "success",
                       "messages": prompt.messages},
            "meta": {n: {"node_id": n, "display_node": n, "parent_node": None,
                         "real_node_id": n} for n in outputs}}

    def _order(self, graph: dict[str, Any]) -> list[str]:
        """Dependencies before dependants, as ComfyUI executes from the outputs backwards."""
        order: list[str] = []

        def visit(node_id: str) -> None:
            if node_id in order:
                return
            for value in graph[node_id]["inputs"].values():
                if isinstance(value, list) and len(value) == 2 and value[0] in graph:
                    visit(value[0])
            order.append(node_id)

        for node_id in graph:
            visit(node_id)
        return order

    def _save(self, graph: dict[str, Any], node: dict[str, Any]) -> list[dict[str, Any]]:
        size = self._size(graph)
        count = max((int(n["inputs"]["amount"]) for n in graph.values()
                     if n["class_type"] == "RepeatLatentBatch"), default=1)
        kind = "output" if node["class_type"] == "SaveImage" else "temp"
        prefix = node["inputs"].get("filename_prefix", "ComfyUI")
        images = []
        for _ in range(count):
            self._counter += 1
            filename = f"{prefix}_{self._counter:05}_.png"
            self.outputs[(kind, filename)] = png_bytes(size, (10, 200, 90))
            images.append({"filename": filename, "subfolder": "", "type": kind})
        return images

    def _size(self, graph: dict[str, Any]) -> tuple[int, int]:
        for node in graph.values():
            if node["class_type"] == "ImageScale":
                return int(node["inputs"]["width"]), int(node["inputs"]["height"])
        for node in graph.values():
            if node["class_type"] == "LoadImage":
                with Image.open(io.BytesIO(self.uploads[node["inputs"]["image"]])) as image:
                    return image.size
        return 512, 512

