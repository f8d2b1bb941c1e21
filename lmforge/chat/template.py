"""The default chat template (ChatML), saved with every tokenizer lmforge trains.

ChatML is what many open chat models use and what `transformers.apply_chat_template` expects;
shipping it with the tokenizer means a checkpoint is chat-ready without extra files.
"""

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

EOS = "<|endoftext|>"
PAD = "<|pad|>"
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
SPECIAL_TOKENS = [EOS, PAD, IM_START, IM_END]


def encode_chat(tokenizer, messages: list[dict], add_generation_prompt: bool = False) -> list[int]:
    """Token ids of a conversation rendered with the tokenizer's own chat template (ChatML when it
    has none). SFT and chat both encode through here, so training and inference see the same ids."""
    return tokenizer(render_chat(tokenizer, messages, add_generation_prompt), add_special_tokens=True).input_ids


def render_chat(tokenizer, messages: list[dict], add_generation_prompt: bool = False) -> str:
    template = None if tokenizer.chat_template else CHATML_TEMPLATE
    return tokenizer.apply_chat_template(
        messages, chat_template=template, tokenize=False, add_generation_prompt=add_generation_prompt
    )
