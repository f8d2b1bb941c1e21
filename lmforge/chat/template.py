"""The default chat template (ChatML), saved with every tokenizer lmforge trains.

ChatML is what many open chat models use and what `transformers.apply_chat_template` expects;
shipping it with the tokenizer means a checkpoint is chat-ready without extra files. With
`tools`, it lists their JSON schemas in the system turn and writes an assistant's calls the
Hermes/Qwen way (`<tool_call>{"name": ..., "arguments": ...}</tool_call>`), which is what
chat/tools.py parses back; a conversation without tools renders exactly as plain ChatML does.
"""

CHATML_TEMPLATE = (
    "{%- set system_first = tools and messages and messages[0]['role'] == 'system' %}"
    "{%- if tools %}"
    "{{ '<|im_start|>system\n' }}"
    "{%- if system_first %}{{ messages[0]['content'] + '\n\n' }}{% endif %}"
    "{{ 'You can call these functions (JSON schemas):\n<tools>\n' }}"
    "{%- for tool in tools %}{{ tool | tojson + '\n' }}{% endfor %}"
    "{{ '</tools>\nTo call one, answer with a block per call:\n<tool_call>\n"
    '{"name": "the name", "arguments": {the arguments}}'
    "\n</tool_call><|im_end|>\n' }}"
    "{%- endif %}"
    "{% for message in messages %}"
    "{%- if not (loop.first and system_first) %}"
    "{%- if message.get('tool_calls') %}"
    "{{ '<|im_start|>' + message['role'] }}"
    "{%- if message['content'] %}{{ '\n' + message['content'] }}{% endif %}"
    "{%- for call in message['tool_calls'] %}"
    "{%- set call = call['function'] if call['function'] is defined else call %}"
    "{{ '\n<tool_call>\n{\"name\": \"' + call['name'] + '\", \"arguments\": ' + call['arguments'] | tojson + '}\n</tool_call>' }}"
    "{%- endfor %}"
    "{{ '<|im_end|>\n' }}"
    "{%- else %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{%- endif %}"
    "{%- endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

EOS = "<|endoftext|>"
PAD = "<|pad|>"
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
SPECIAL_TOKENS = [EOS, PAD, IM_START, IM_END]


def encode_chat(
    tokenizer, messages: list[dict], add_generation_prompt: bool = False, tools: list | None = None
) -> list[int]:
    """Token ids of a conversation rendered with the tokenizer's own chat template (ChatML when it
    has none). SFT and chat both encode through here, so training and inference see the same ids."""
    text = render_chat(tokenizer, messages, add_generation_prompt, tools)
    return tokenizer(text, add_special_tokens=True).input_ids


def render_chat(tokenizer, messages: list[dict], add_generation_prompt: bool = False, tools: list | None = None) -> str:
    """`tools`: OpenAI-style function definitions, handed to the template's own `tools` variable."""
    template = None if tokenizer.chat_template else CHATML_TEMPLATE
    return tokenizer.apply_chat_template(
        messages,
        tools=tools or None,
        chat_template=template,
        tokenize=False,
        add_generation_prompt=add_generation_prompt,
    )


def template_text(tokenizer, tools: list | None = None) -> str:
    """The template that renders a conversation (a tokenizer may hold several, one for tools)."""
    if not tokenizer.chat_template:
        return CHATML_TEMPLATE
    return tokenizer.get_chat_template(None, tools or None)
