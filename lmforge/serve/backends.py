"""What the server decodes with. Both backends take the same calls, so the API, the guardrails and
the page sit in front of either:

    context                      the model's context length in tokens
    chat_prompt(messages, tools) the conversation rendered with the model's own chat template
    chat_template(tools)         that template's text (it says how the model writes tool calls)
    continuation(text)           token ids of text that continues a prompt (no BOS)
    text_prompt(text)            a plain completion prompt
    prompt_tokens(prompt)        its length in tokens (for usage and context checks)
    submit(prompt, params, emit) start decoding; `emit` gets the engine's events (Text pieces, then
                                 Done, Failed or Aborted); returns a handle with cancel()
    abort_all(message)           end every request with Aborted(message) and refuse new ones
    close()                      free the model (after abort_all; the server is stopping)
    load()                       running / waiting counts for /health
    logprobs                     whether it gives token log-probabilities (and echo)
    vocab_size                   token ids a prompt may hold (None: the backend checks)
"""

from lmforge.chat.template import encode_chat, template_text
from lmforge.engine import Engine


class TorchBackend:
    """lmforge's own decode engine over any model the loader resolves."""

    def __init__(self, model, tokenizer, max_batch: int = 8, max_waiting: int = 64):
        self.engine = Engine(model, tokenizer, max_batch=max_batch, max_waiting=max_waiting)
        self.tokenizer, self.context = tokenizer, self.engine.context
        self.logprobs, self.vocab_size = True, len(tokenizer)  # token log-probs (and echo); ids a prompt may hold

    def chat_prompt(self, messages: list[dict], tools: list | None = None) -> list[int]:
        return encode_chat(self.tokenizer, messages, add_generation_prompt=True, tools=tools)

    def chat_template(self, tools: list | None = None) -> str:
        return template_text(self.tokenizer, tools)

    def continuation(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False).input_ids

    def text_prompt(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=True).input_ids

    def prompt_tokens(self, prompt: list[int]) -> int:
        return len(prompt)

    def submit(self, prompt, params, emit):
        return self.engine.submit(prompt, params, emit)

    def abort_all(self, message: str) -> None:
        self.engine.abort_all(message)

    def close(self) -> None:
        self.engine.close()

    def load(self) -> dict:
        return self.engine.load()
