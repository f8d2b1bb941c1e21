"""The decode engine: one thread decodes every running request together (continuous batching).

A request that arrives while others decode is prefilled and then joins the running batch before
the next step: its KV cache is left-padded to the batch's length and stacked onto the shared
cache, with the padding masked out. A prompt with many new tokens is prefilled alone (batch of
one, no padding, so it is read exactly as `generate` reads it; that much work is compute-bound,
and batching would add only padding); prompts with few new tokens (short prompts, or ones the
prefix cache mostly holds) are prefilled together in one left-padded forward, because a forward
over a few tokens costs what reading every weight once costs, and the group shares that read. Each step feeds one token per row with its own position, samples each row
with its own parameters and generator, and retires rows that hit EOS, a stop string, their
`max_tokens` or were cancelled; columns every row has as padding are trimmed away. The cache lives
in preallocated buffers (kv_buffer.py) and, for Llama-architecture models, decode steps skip
transformers' per-call machinery (llama_step.py); other architectures step through their own forward.

Continuous rather than dynamic batching because replies differ wildly in length: with a batch
formed once, a 500-token answer would hold 7 finished slots hostage; here a slot frees the step its
request ends and the next request takes it at once.

Callers get events (events.py) through a callback called on the engine thread: `Text` pieces
(each after its tokens' `Logprobs` when the request asks for them; with `echo`, the prompt's come
first, from a prefill that keeps every position's logits), then one of `Done`, `Failed` or
`Aborted`. `stream()` wraps that in a plain iterator. `abort_all` ends every request at once (a
server shutting down); `close` also stops the engine thread.

A prompt that begins like one prefilled before (few-shot examples, a system prompt, a chat's
history) runs only its new tokens on top of the kept K, V of that beginning (prefix_cache.py).
"""

import queue
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

import torch

from lmforge.engine import llama_step
from lmforge.engine.events import Aborted, Done, Event, Failed, Logprobs, Text, Usage
from lmforge.engine.kv_buffer import KVBuffer
from lmforge.engine.prefix_cache import PrefixCache
from lmforge.engine.sampling import SamplingParams, make_generator, prompt_logprobs, sample, token_logprob
from lmforge.engine.text_stream import TextStream
from lmforge.errors import LmforgeError

TOGETHER = 64  # a prompt with at most this many new tokens is prefilled with the others that have few
CHUNK = 512  # a long prompt is prefilled this many tokens a call: its attention masks stay ~CHUNK x context


class QueueFull(LmforgeError):
    """More requests are waiting than the engine accepts."""


class ShuttingDown(LmforgeError):
    """The engine takes no new requests: it is being stopped."""


class GenerationError(LmforgeError):
    """The model failed while generating; the stream was ended."""


@dataclass
class Request:
    prompt: list[int]
    params: SamplingParams
    emit: Callable[[Event], None]
    cancelled: bool = False
    cancelled_at: float = 0.0  # time.monotonic() of cancel()
    generator: torch.Generator | None = None
    text: TextStream | None = None
    tokens: list[int] = field(default_factory=list)  # the reply's tokens
    ended_by_token: bool = False  # EOS / end-of-turn sampled: generated, counted, not part of the reply
    position: int = 0  # position id of the next token fed
    constraint: object | None = None  # constraints.Constraint: the tokens a JSON reply may take next
    on_cancel: Callable[["Request"], None] | None = None  # the engine's: a queued request leaves the queue

    def cancel(self) -> None:
        """A client that went away: a queued request leaves the queue now (it must not hold a place
        that live clients are refused for), a running one frees its slot before the next step."""
        if self.cancelled:
            return
        self.cancelled_at, self.cancelled = time.monotonic(), True
        if self.on_cancel is not None:
            self.on_cancel(self)


def stop_token_ids(tokenizer) -> set[int]:
    """EOS and the end-of-turn token of each chat template family (ChatML, Llama 3, Phi-3, Gemma)
    that the vocabulary has."""
    ids = {tokenizer.eos_token_id}
    for token in ("<|im_end|>", "<|eot_id|>", "<|end|>", "<end_of_turn>"):
        i = tokenizer.convert_tokens_to_ids(token)
        if isinstance(i, int) and i != tokenizer.unk_token_id:
            ids.add(i)
    return {i for i in ids if i is not None}


class Engine:
    def __init__(
        self,
        model,
        tokenizer,
        max_batch: int = 8,
        max_waiting: int = 64,
        start: bool = True,
        prefix_cache_mb: int = 1024,
    ):
        """`prefix_cache_mb`: memory (on the model's device) for kept prompts' K, V; 0 keeps none."""
        self.model, self.tokenizer = model.eval(), tokenizer
        self.prefix = PrefixCache(prefix_cache_mb << 20) if prefix_cache_mb > 0 else None
        self.max_batch, self.max_waiting = max_batch, max_waiting
        self.stops = stop_token_ids(tokenizer)
        self.context = getattr(model.config, "max_position_embeddings", None) or 2048
        self.waiting: deque[Request] = deque()
        self.running: list[Request] = []
        self.kv: KVBuffer | None = None  # the batch's cache: per layer K, V of shape [B, H, T, D]
        self.lean = llama_step.supports(model)  # decode steps through llama_step, else transformers
        self.project = llama_step.projection_for(model) if self.lean else None  # block kernel where lossless
        if not self.lean:
            llama_step.log.info(
                "decode step: %s goes through transformers' own forward (the lean step covers %s)",
                type(model).__name__,
                ", ".join(sorted(llama_step.ARCHITECTURES)),
            )
        self.mask: torch.Tensor | None = None  # [B, T]: 1 = real token
        self.wake = threading.Condition()
        self.steps, self.step_rows, self.submitted = 0, 0, 0  # step_rows / steps: the mean batch size
        self.step_starts: deque[float] = deque(maxlen=64)  # when recent decode steps began
        self.cancelled, self.cancel_lag_max = 0, 0  # steps a request decoded after its cancel(), at most
        self.stopping: str | None = None  # set by abort_all: every request ends with Aborted(stopping)
        self.closed = False
        self.threaded = start  # without a thread the caller steps the engine (`run_once`, `stream`)
        self.thread = threading.Thread(target=self._loop, name="lmforge-engine", daemon=True) if start else None
        if self.thread:
            self.thread.start()

    # ---- the caller's side -------------------------------------------------------------------

    def submit(self, prompt: list[int], params: SamplingParams, emit: Callable[[Event], None]) -> Request:
        if self.stopping:
            raise ShuttingDown(self.stopping)
        if not prompt:
            raise LmforgeError("empty prompt")
        if len(prompt) + params.max_tokens > self.context:
            raise LmforgeError(
                f"prompt ({len(prompt)} tokens) + max_tokens ({params.max_tokens}) exceeds the "
                f"model's context of {self.context} tokens"
            )
        req = Request(list(prompt), params, emit, on_cancel=self._leave_queue)
        with self.wake:
            if len(self.waiting) >= self.max_waiting:
                raise QueueFull(f"{len(self.waiting)} requests are already waiting")
            self.waiting.append(req)
            self.submitted += 1
            self.wake.notify()
        return req

    def stream(self, prompt: list[int], params: SamplingParams):
        """Yield text pieces, then return (finish_reason, usage); raises GenerationError on failure.
        An engine without its own thread is stepped here, in the caller's thread."""
        events: queue.Queue = queue.Queue()
        req = self.submit(prompt, params, events.put)
        try:
            while True:
                if not self.threaded and events.empty():
                    self.run_once()
                    continue
                ev = events.get()
                if isinstance(ev, Text):
                    yield ev.piece
                elif isinstance(ev, Done):
                    return ev.reason, ev.usage
                elif not isinstance(ev, Logprobs):
                    raise GenerationError(f"generation failed: {ev.message}")
        finally:
            req.cancel()  # no-op when finished; frees the slot when the consumer stops early

    def load(self) -> dict:
        return {
            "running": len(self.running),
            "waiting": len(self.waiting),
            "max_batch": self.max_batch,
            "submitted": self.submitted,
            "steps": self.steps,
            "step_rows": self.step_rows,
            "cancelled": self.cancelled,
            "cancel_lag_max_steps": self.cancel_lag_max,
            "prefix_hits": self.prefix.hits if self.prefix else 0,
            "prefix_tokens_reused": self.prefix.reused_tokens if self.prefix else 0,
        }

    def _leave_queue(self, req: Request) -> None:
        with self.wake:
            try:
                self.waiting.remove(req)
            except ValueError:
                return  # running (freed at the next step), being admitted, or finished
        req.emit(Done("cancelled", _usage(req)))

    def abort_all(self, message: str) -> None:
        """End every request and refuse new ones: waiting requests hear `Aborted(message)` at once,
        running ones before the next step (the engine thread owns the batch)."""
        with self.wake:
            self.stopping = message
            waiting, self.waiting = list(self.waiting), deque()
            self.wake.notify()
        for req in waiting:
            req.emit(Aborted(message))

    def close(self, timeout: float = 5.0) -> None:
        """Abort everything, stop the engine thread and drop the batch's cache."""
        self.abort_all("the server is shutting down")
        with self.wake:
            self.closed = True
            self.wake.notify()
        if self.thread is not None and self.thread is not threading.current_thread():
            self.thread.join(timeout)

    # ---- the engine thread -------------------------------------------------------------------

    def _loop(self) -> None:
        while True:
            with self.wake:
                while not self.waiting and not self.running and not self.closed:
                    self.wake.wait()
                if self.closed:
                    break
            self.run_once()
        self._drop_gone()
        self.running, self.kv, self.mask = [], None, None

    def run_once(self) -> None:
        """Admit waiting requests into free slots (prefill), then one decode step for the batch."""
        with self.wake:
            joining = []
            while self.waiting and len(self.running) + len(joining) < self.max_batch:
                joining.append(self.waiting.popleft())
        try:
            with torch.inference_mode():
                few = []  # prompts with few new tokens: prefilled together, after those prefilled alone
                for req in joining:
                    if self.stopping:
                        req.emit(Aborted(self.stopping))
                    elif req.cancelled:
                        req.emit(Done("cancelled", _usage(req)))
                    elif req.params.echo or len(req.prompt) - self._kept(req.prompt) > TOGETHER:
                        self._prefill(req)  # a long one is kept before the next is looked up
                    else:
                        few.append(req)
                if few:
                    self._prefill_together(few)
                if self.running:
                    self._step()
        except Exception as e:  # noqa: BLE001 - every request hears of it; the engine goes on
            message = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
            for req in self.running + [r for r in joining if r not in self.running]:
                req.emit(Failed(message))
            self.running, self.kv, self.mask = [], None, None

    def _kept(self, prompt: list[int]) -> int:
        """Tokens of the prompt's beginning the prefix cache holds."""
        return self.prefix.shared(prompt) if self.prefix is not None else 0

    def _prefill(self, req: Request) -> None:
        from transformers import DynamicCache

        echo = req.params.echo  # every prompt position's logits: the whole prompt runs
        shared, past = (0, None) if echo or self.prefix is None else self.prefix.longest(req.prompt)
        ids = torch.tensor([req.prompt[shared:]], device=self.model.device)
        mask = torch.ones(1, len(req.prompt), dtype=torch.long, device=ids.device)
        if self.lean and not echo:
            positions = torch.arange(shared, len(req.prompt), device=ids.device)[None]
            self._lean_prefill([req], past, ids, positions, mask)
            return
        # a cache without the model's config keeps every column in every layer: sliding-window
        # layers (Mistral, Gemma) would otherwise keep only their window, and the buffer needs
        # one length for all layers (the masks, not the cache, apply the window)
        cache = DynamicCache() if past is None else DynamicCache(ddp_cache_data=past)
        out = self.model(input_ids=ids, cache=cache, use_cache=True, logits_to_keep=0 if echo else 1)
        if echo:
            req.emit(Logprobs(prompt_logprobs(out.logits[0], req.prompt, req.params.logprobs or 0), prompt=True))
            if req.params.max_tokens == 0:  # scoring only (lm-eval's log-likelihoods): nothing to decode
                req.emit(Done("length", _usage(req)))
                return
        kv = [(layer.keys, layer.values) for layer in out.cache.layers]
        self._start([req], kv, mask, out.logits[:, -1])

    def _prefill_together(self, reqs: list[Request]) -> None:
        """One forward for several prompts with few new tokens each. Every row runs the same number
        of new tokens, `new` (the most any row needs): a row whose kept beginning is longer recomputes
        a few of its last kept tokens, one whose whole prompt is shorter is left-padded. So each
        row's tokens are contiguous and end in the last column (one logit row each), and the kept
        K, V in front, left-padded to one length, are masked where a row has none."""
        from transformers import DynamicCache

        found = [self.prefix.longest(r.prompt) if self.prefix is not None else (0, None) for r in reqs]
        new = max(len(r.prompt) - shared for r, (shared, _) in zip(reqs, found))
        kept = [max(len(r.prompt) - new, 0) for r in reqs]  # <= each row's shared beginning
        width = max(kept)
        device, rows = self.model.device, len(reqs)
        ids = torch.zeros(rows, new, dtype=torch.long, device=device)
        mask = torch.zeros(rows, width + new, dtype=torch.long, device=device)
        positions = torch.ones(rows, new, dtype=torch.long, device=device)  # padding's: any, masked
        for i, (req, k) in enumerate(zip(reqs, kept)):
            tail = req.prompt[k:]
            ids[i, new - len(tail) :] = torch.tensor(tail, device=device)
            positions[i, new - len(tail) :] = torch.arange(k, len(req.prompt), device=device)
            mask[i, width - k : width] = 1
            mask[i, width + new - len(tail) :] = 1
        kept_kv = _stack_kept(found, kept, width) if width else None
        if self.lean:
            self._lean_prefill(reqs, kept_kv, ids, positions, mask)
            return
        cache = DynamicCache() if kept_kv is None else DynamicCache(ddp_cache_data=kept_kv)
        out = self.model(
            input_ids=ids, attention_mask=mask, position_ids=positions, cache=cache, use_cache=True, logits_to_keep=1
        )
        # `mask` marks each row's real columns, its last len(prompt) (kept and new are contiguous);
        # padding's K, V are zeroed (never NaN for the masked columns' zero weights to multiply),
        # as the batch's buffer keeps them
        keep = mask[:, None, :, None]
        kv = [(layer.keys * keep, layer.values * keep) for layer in out.cache.layers]
        self._start(reqs, kv, mask, out.logits[:, -1])

    def _lean_prefill(
        self, reqs: list[Request], kept_kv: list | None, ids: torch.Tensor, positions: torch.Tensor, mask: torch.Tensor
    ) -> None:
        """The prompts' new tokens `ids` [rows, new] through the decode step (no per-call machinery,
        compact weights) on their kept K, V (None: none), CHUNK columns a call so that a long
        prompt's attention masks stay small; `mask` covers kept and new columns."""
        rows, new = ids.shape
        buf = KVBuffer(kept_kv or _no_kv(self.model, rows), self.context, room=new)
        kept = mask.shape[1] - new
        for start in range(0, new, CHUNK):
            end = min(start + CHUNK, new)
            piece, at = ids[:, start:end], positions[:, start:end]
            logits = llama_step.decode_step(self.model, piece, at, buf, mask[:, : kept + end], self.project)
        self._start(reqs, buf.layers(), mask, logits)

    def _start(self, reqs: list[Request], kv, row_mask: torch.Tensor, logits: torch.Tensor) -> None:
        """Prefilled requests: their prompts' K, V kept for later prompts, then they join the batch
        together, each with its first token sampled. `kv`: per layer [rows, heads, length, dim],
        left-padded (`row_mask`: 1 = real column); `logits`: [rows, vocab] for each next token."""
        for i, req in enumerate(reqs):
            if self.prefix is not None:
                n = len(req.prompt)
                rows = (
                    kv
                    if len(reqs) == 1
                    else [(k[i : i + 1, :, -n:].clone(), v[i : i + 1, :, -n:].clone()) for k, v in kv]
                )
                self.prefix.add(req.prompt, rows)
            req.generator, req.position = make_generator(req.params.seed), len(req.prompt)
            if req.params.json_schema is not None:
                from lmforge.engine.constraints import Constraint

                req.constraint = Constraint(self.tokenizer, req.params.json_schema)
            req.text = TextStream(self.tokenizer, req.params.stop)
        self._join(reqs, kv, row_mask.to(self.model.device))
        logits = logits.float()
        self._retire([req for i, req in enumerate(reqs) if not self._accept(req, logits[i])])

    def _join(self, reqs: list[Request], kv, row_mask: torch.Tensor) -> None:
        """Stack the new rows' cache onto the batch's, left-padding whichever is shorter."""
        if self.kv is None:
            self.kv = KVBuffer(kv, self.context)
            self.mask = row_mask
        else:
            total = max(row_mask.shape[1], self.mask.shape[1])
            self.kv.join(kv)
            self.mask = torch.cat([_left_pad_mask(self.mask, total), _left_pad_mask(row_mask, total)])
        self.running.extend(reqs)

    def _transformers_step(self, last: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """One step through the model's own forward (any architecture); its new K, V column is
        copied into the buffer."""
        from transformers import DynamicCache

        cache = DynamicCache(ddp_cache_data=self.kv.layers())  # full layers, as in _prefill
        out = self.model(
            input_ids=last,
            attention_mask=self.mask,
            position_ids=positions,
            cache=cache,
            use_cache=True,
            logits_to_keep=1,
        )
        column = self.kv.next_column()
        for i, layer in enumerate(cache.layers):
            self.kv.write(i, column, layer.keys[:, :, -1:], layer.values[:, :, -1:])
        return out.logits[:, -1]

    def _drop_gone(self) -> None:
        """Before the forward: a client that left, or a server that stops, costs no more compute."""
        gone = [r for r in self.running if r.cancelled or self.stopping]
        for req in gone:
            if req.cancelled and not self.stopping:
                self.cancelled += 1
                lag = sum(t > req.cancelled_at for t in self.step_starts)  # steps begun after the cancel
                self.cancel_lag_max = max(self.cancel_lag_max, lag)
            req.emit(Aborted(self.stopping) if self.stopping else Done("cancelled", _usage(req)))
        self._retire(gone)

    def _step(self) -> None:
        self._drop_gone()
        if not self.running:
            return
        self.step_starts.append(time.monotonic())
        self.step_rows += len(self.running)
        last = torch.tensor([[r.tokens[-1]] for r in self.running], device=self.model.device)
        positions = torch.tensor([[r.position] for r in self.running], device=self.model.device)
        self.mask = torch.cat([self.mask, torch.ones_like(self.mask[:, :1])], dim=1)
        if self.lean:
            logits = llama_step.decode_step(self.model, last, positions, self.kv, self.mask, self.project)
        else:
            logits = self._transformers_step(last, positions)
        self.steps += 1
        logits = logits.float()
        done = []
        for i, req in enumerate(self.running):
            req.position += 1
            if not self._accept(req, logits[i]):
                done.append(req)
        self._retire(done)

    def _accept(self, req: Request, logits: torch.Tensor) -> bool:
        """Sample the row's next token and send its text; False once the request is finished."""
        allowed = logits if req.constraint is None else req.constraint.allowed(logits)
        token = sample(allowed, req.params, req.generator)
        if req.constraint is not None:
            req.constraint.take(token)
        req.tokens.append(token)
        if req.params.logprobs is not None:
            req.emit(Logprobs((token_logprob(logits, token, req.params.logprobs),)))
        if token in self.stops:
            req.tokens.pop()
            req.ended_by_token = True
            return self._finish(req, "stop")
        piece, stopped = req.text.push(token)
        if piece:
            req.emit(Text(piece))
        if stopped:
            return self._finish(req, "stop", flush=False)
        if len(req.tokens) >= req.params.max_tokens:
            return self._finish(req, "length")
        return True

    def _finish(self, req: Request, reason: str, flush: bool = True) -> bool:
        tail = req.text.finish() if flush else ""
        if tail:
            req.emit(Text(tail))
        req.emit(Done(reason, _usage(req)))
        return False

    def _retire(self, done: list[Request]) -> None:
        if not done:
            return
        keep = [i for i, r in enumerate(self.running) if r not in done]
        if not keep:
            self.running, self.kv, self.mask = [], None, None
            return
        # the rows past the kept count fill the places of those that left, so the rest stay put
        tail = iter(i for i in keep if i >= len(keep))
        kept = set(keep)
        order = [i if i in kept else next(tail) for i in range(len(keep))]
        self.running = [self.running[i] for i in order]
        index = torch.tensor(order, device=self.model.device)
        self.mask = self.mask[index]
        pad = int((self.mask.cumsum(1) == 0).sum(1).min())  # columns that are padding in every row
        self.mask = self.mask[:, pad:]
        self.kv.select(index, drop=pad)


def _usage(req: Request) -> Usage:
    return Usage(len(req.prompt), len(req.tokens) + req.ended_by_token)


def _stack_kept(found: list, kept: list[int], width: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Per layer, each row's first `kept` cached K, V left-padded with zeros to `width` columns."""
    template = next(kv for _, kv in found if kv is not None)
    out = []
    for layer, (k0, v0) in enumerate(template):
        ks = k0.new_zeros(len(found), k0.shape[1], width, k0.shape[3])
        vs = v0.new_zeros(len(found), v0.shape[1], width, v0.shape[3])
        for i, ((_, kv), n) in enumerate(zip(found, kept)):
            if n:
                ks[i, :, width - n :] = kv[layer][0][0, :, :n]
                vs[i, :, width - n :] = kv[layer][1][0, :, :n]
        out.append((ks, vs))
    return out


def _no_kv(model, rows: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Per layer an empty K, V (no column yet) for `rows` rows."""
    cfg = model.config
    dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    empty = torch.zeros(rows, cfg.num_key_value_heads, 0, dim, dtype=model.dtype, device=model.device)
    return [(empty, empty)] * cfg.num_hidden_layers


def _left_pad_mask(m: torch.Tensor, length: int) -> torch.Tensor:
    missing = length - m.shape[1]
    return m if missing == 0 else torch.cat([m.new_zeros(m.shape[0], missing), m], dim=1)
