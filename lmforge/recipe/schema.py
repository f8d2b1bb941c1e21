"""The recipe schema: one pydantic model per stage section.

Every model forbids unknown keys so that a typo (`train.lrr`) is an error naming the key,
never a setting that silently does nothing. Paths left as `None` mean "the standard place in
the run directory", which is what lets every stage run alone or inside `lmforge run`.
"""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from lmforge.samples import sample

Stage = Literal[
    "curate",
    "tokenizer",
    "tokenize",
    "pretrain",
    "adapt",
    "eval",
    "generate",
    "sft",
    "release",
    "export",
    "translate",
    "self_instruct",
    "judge",
    "dpo",
    "decontaminate",
    "merge",
    "reverse_instruct",
    "distill",
]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class RunConfig(Section):
    name: str = "run"
    out_dir: str = "runs"
    seed: int = 1337
    stages: list[Stage] = Field(default_factory=lambda: ["tokenizer", "tokenize", "pretrain", "generate"])


class MinHashConfig(Section):
    enabled: bool = True
    bands: int = Field(14, ge=1)  # FineWeb's 14 x 8; see lmforge/curate/dedup.py for lighter edits
    rows: int = Field(8, ge=1)
    ngram: int = Field(5, ge=1)
    verify_threshold: float | None = Field(None, ge=0, le=1)  # exact Jaccard check of candidate pairs
    # datatrove's four-stage MinHash (signatures -> buckets -> clusters -> filter) for corpora that do
    # not fit one task's memory; same executors, no verification
    multistage: bool = False


class QualityClassifierConfig(Section):
    model: str | None = None  # weights from an earlier run (.npz); or train from the example files below
    positive: list[str] = Field(default_factory=list)
    negative: list[str] = Field(default_factory=list)
    threshold: float = Field(0.5, ge=0, le=1)

    @model_validator(mode="after")
    def _model_or_examples(self) -> "QualityClassifierConfig":
        if not self.model and not (self.positive and self.negative):
            raise ValueError("give `model` or both `positive` and `negative` example files")
        return self


class CodeCurateConfig(Section):
    """`curate.preset = "code"`: The Stack / StarCoder rules (lmforge/curate/code.py)."""

    languages: list[str] = Field(default_factory=list)  # programming languages to keep (empty: all)
    max_bytes: int = Field(1_000_000, ge=1)
    max_avg_line_length: float = Field(100.0, gt=0)
    max_line_length: int = Field(1000, ge=1)
    min_alnum: float = Field(0.25, ge=0, le=1)
    # SPDX ids allowed (header, LICENSE file or The Stack's column); None: no licence filter
    licenses: list[str] | None = None
    secrets: bool = True  # API keys, tokens and private keys -> <SECRET>


class CurateConfig(Section):
    # JSONL(.gz)/Parquet/.txt/WARC files, folders or globs; "hf:NAME" streams a Hub dataset; a
    # folder written by datasets' save_to_disk is read as a dataset
    inputs: list[str] = Field(default_factory=list)
    text_field: str = "text"
    # "code": source files (folders of them, or The Stack's parquet with text_field = "content")
    # through `code` instead of language ID and the text filters
    preset: Literal["text", "code"] = "text"
    code: CodeCurateConfig = Field(default_factory=CodeCurateConfig)
    hf_split: str = "train"
    # the dataset's config (subset), for every hf: input or per dataset: { "HuggingFaceFW/fineweb-2" = "deu_Latn" }
    hf_config: str | dict[str, str] | None = None
    hf_limit: int | None = Field(None, ge=1)  # read at most this many records of each hf: input, per task
    normalise: bool = True  # ftfy + NFC
    languages: list[str] = Field(default_factory=lambda: ["en", "de"])  # empty: keep every language
    language_threshold: float = Field(0.65, ge=0, le=1)
    filters: list[Literal["gopher_repetition", "gopher_quality", "c4", "fineweb"]] = Field(
        default_factory=lambda: ["gopher_repetition", "gopher_quality", "c4", "fineweb"]
    )
    # language -> filter -> threshold overrides on top of the en/de presets (lmforge/curate/presets.py)
    thresholds: dict[str, dict[str, dict]] = Field(default_factory=dict)
    quality_classifier: QualityClassifierConfig | None = None
    pii: bool = True
    # task specs (paths or globs) whose items' 13-word n-grams drop a document ("contaminated")
    decontaminate: list[str] = Field(default_factory=list)
    exact_dedup: bool = True
    minhash: MinHashConfig = Field(default_factory=MinHashConfig)
    write_dropped: bool = True  # side files of dropped documents (bad input is always written)
    workers: int = Field(2, ge=1)
    tasks: int | None = Field(None, ge=1)  # filtering tasks; default: workers
    executor: Literal["local", "slurm", "ray"] = "local"
    # passed to datatrove's SlurmPipelineExecutor / RayPipelineExecutor (partition, time, cpus_per_task, ...)
    executor_options: dict = Field(default_factory=dict)
    out: str | None = None  # default: <run>/curate


class TokenizerConfig(Section):
    inputs: list[str] = Field(default_factory=list, description="JSONL/Parquet/txt files or folders")
    text_field: str = "text"
    vocab_size: int = Field(8192, ge=260, le=1 << 20)
    min_frequency: int = Field(2, ge=1)
    # language -> held-out text file, used to report fertility (tokens per word) per language
    fertility_texts: dict[str, str] = Field(default_factory=dict)
    out: str | None = None


class TokenizeConfig(Section):
    train: list[str] = Field(default_factory=list)
    val: list[str] = Field(default_factory=list)
    text_field: str = "text"
    tokenizer: str | None = None
    shard_tokens: int = Field(50_000_000, ge=1024, description="tokens per shard file")
    out: str | None = None


class ModelConfig(Section):
    family: Literal["llama", "mistral"] = "llama"
    hidden_size: int = Field(256, ge=8)
    intermediate_size: int | None = None  # default: SwiGLU's 8/3 * hidden, rounded up to 32
    num_layers: int = Field(4, ge=1)
    num_heads: int = Field(4, ge=1)
    num_kv_heads: int | None = None  # GQA; default = num_heads (plain multi-head attention)
    rope_theta: float = 10000.0
    max_position_embeddings: int | None = None  # default: train.seq_len
    sliding_window: int | None = None  # mistral only
    tie_word_embeddings: bool = True
    init_std: float = 0.02

    @model_validator(mode="after")
    def _heads_divide(self) -> "ModelConfig":
        if self.hidden_size % self.num_heads:
            raise ValueError(f"hidden_size {self.hidden_size} is not divisible by num_heads {self.num_heads}")
        kv = self.num_kv_heads or self.num_heads
        if self.num_heads % kv:
            raise ValueError(f"num_heads {self.num_heads} is not divisible by num_kv_heads {kv}")
        if self.sliding_window is not None and self.family != "mistral":
            raise ValueError("sliding_window needs family = 'mistral'")
        return self


class TrainConfig(Section):
    data: str | None = None
    val_data: str | None = None
    # a data mixture instead of `data`: named packed-token folders and their sampling weights
    sources: dict[str, str] = Field(default_factory=dict)
    mix: dict[str, float] = Field(default_factory=dict, description="source -> weight (default: equal)")
    # continue training an existing HF model folder (its architecture; the [model] section is unused)
    init_from: str | None = None
    embedding_lr_scale: float = Field(1.0, gt=0, description="LR multiplier of the token embeddings")
    seq_len: int = Field(256, ge=8)
    micro_batch_size: int = Field(8, ge=1)
    grad_accum: int = Field(1, ge=1)
    max_steps: int = Field(1000, ge=1)
    lr: float = Field(3e-3, gt=0)
    min_lr_ratio: float = Field(0.1, ge=0, le=1)
    warmup_steps: int = Field(50, ge=0)
    schedule: Literal["cosine", "wsd", "constant"] = "cosine"
    wsd_decay_fraction: float = Field(0.2, gt=0, le=1)
    weight_decay: float = Field(0.1, ge=0)
    beta1: float = 0.9
    beta2: float = 0.95
    eps: float = 1e-8
    grad_clip: float = Field(1.0, ge=0)
    precision: Literal["auto", "fp32", "bf16"] = "auto"  # auto: bf16 where the chip has native bf16 math
    compile: bool = False
    threads: int | None = Field(None, ge=1)
    nproc_per_node: int = Field(1, ge=1, description="> 1 relaunches the stage under torchrun")
    # several nodes without Slurm: start the same command on each node (torchrun's own options)
    nnodes: int = Field(1, ge=1, description="torchrun --nnodes")
    node_rank: int | None = Field(None, ge=0, description="torchrun --node-rank (default: assigned at rendezvous)")
    rdzv_endpoint: str | None = Field(None, description="torchrun --rdzv-endpoint HOST:PORT, needed with nnodes > 1")
    fsdp: bool = False
    # every training stage: recompute each decoder layer's activations in the backward pass
    # (less memory for about a third more compute)
    activation_checkpointing: bool = False
    # pretrain/adapt: attention stays inside each EOS-separated document of a window and position
    # ids restart at each one (off: a token attends to the previous, unrelated document too)
    document_mask: bool = False
    # the attention kernel of every training stage; auto: SDPA for padded batches; for packed rows
    # FlashAttention-2's variable-length kernel on CUDA with flash-attn, else sdpa_varlen (causal
    # SDPA per document); "sdpa" on packed rows: a block-diagonal mask over the whole row
    attention: Literal["auto", "sdpa", "sdpa_varlen", "eager", "flash_attention_2", "flex_attention"] = "auto"
    checkpoint_every: int = Field(500, ge=1)
    log_spaced_checkpoints: bool = True
    log_every: int = Field(10, ge=1)
    eval_every: int = Field(100, ge=1)
    eval_batches: int = Field(8, ge=1)
    # every eval_every steps (pretrain, adapt, sft), rank 0 also scores these task specs and this
    # held-out text (language -> file, bits per byte), logged as eval_* metrics and plotted
    eval_tasks: list[str] = Field(default_factory=list)
    eval_bpb: dict[str, str] = Field(default_factory=dict)
    eval_limit: int | None = Field(50, ge=1, description="items per task and documents per language")
    resume: bool = True
    # trackers mirror metrics.jsonl, for every training stage (pretrain, adapt, sft, dpo)
    tensorboard: bool = False  # <run>/tensorboard/<stage>
    wandb: bool = False
    wandb_project: str = "lmforge"
    wandb_mode: Literal["online", "offline", "disabled"] | None = None  # default: WANDB_MODE, else online
    mlflow: bool = False
    mlflow_tracking_uri: str | None = None  # default: a file store in <run>/mlruns
    mlflow_experiment: str = "lmforge"

    @model_validator(mode="after")
    def _mix_names_sources(self) -> "TrainConfig":
        unknown = sorted(set(self.mix) - set(self.sources))
        if unknown:
            raise ValueError(f"mix names unknown source(s) {', '.join(unknown)}; sources: {sorted(self.sources)}")
        if any(w < 0 for w in self.mix.values()) or (self.mix and sum(self.mix.values()) <= 0):
            raise ValueError("mix weights must be >= 0 and not all zero")
        return self


# How lmforge samples text when nobody says otherwise: `generate`, `chat`, and every stage that
# samples replies through the decode engine. (The OpenAI API keeps OpenAI's own defaults.)
SAMPLING_DEFAULTS = {"max_new_tokens": 128, "temperature": 0.7, "top_k": 50, "top_p": 0.95}


class GenerateConfig(Section):
    checkpoint: str | None = None
    prompts: list[str] = Field(default_factory=lambda: ["The"])
    max_new_tokens: int = Field(SAMPLING_DEFAULTS["max_new_tokens"], ge=1)
    temperature: float = Field(SAMPLING_DEFAULTS["temperature"], ge=0)
    top_k: int = Field(SAMPLING_DEFAULTS["top_k"], ge=0)
    top_p: float = Field(SAMPLING_DEFAULTS["top_p"], gt=0, le=1)
    seed: int = 0


class EvalConfig(Section):
    model: str | None = None  # default: the run's newest checkpoint
    # multiple-choice task specs (.toml/.yaml), e.g. examples/tasks/arc_sample_de.toml
    tasks: list[str] = Field(default_factory=list)
    num_fewshot: int | None = Field(None, ge=0, description="overrides each task's own num_fewshot")
    fewshot_seed: int = 1234  # lm-evaluation-harness's default, so prompts match the harness
    limit: int | None = Field(None, ge=1, description="first N items of each task")
    # "lm-eval": score `tasks` and `harness_tasks` with lm-evaluation-harness instead of lmforge
    harness: Literal["lm-eval"] | None = None
    harness_tasks: list[str] = Field(default_factory=list, description="tasks registered in lm-eval")
    # compare with this model (folder or run): per-task deltas with paired-bootstrap significance
    baseline: str | None = None
    target_language: str | None = None  # deltas in it are labelled "gain"
    source_language: str | None = None  # deltas in it are labelled "forgetting"
    bootstrap_samples: int = Field(1000, ge=100)
    # evaluate every checkpoint of the run and plot each metric against training tokens
    sweep: bool = False
    # language -> held-out text (JSONL/Parquet/txt); scored as bits per byte, side by side
    bpb_texts: dict[str, str] = Field(default_factory=dict)
    text_field: str = "text"
    batch_size: int = Field(8, ge=1)
    max_docs: int | None = Field(None, ge=1)
    # Pythia memorization test on packed training tokens (default data: <run>/tokens/train)
    memorization: bool = False
    memorization_data: str | None = None
    memorization_samples: int = Field(256, ge=1)
    memorization_prefix: int = Field(32, ge=1)
    memorization_continuation: int = Field(32, ge=1)
    judge: "JudgeConfig | None" = None  # also grade the model MT-Bench-style ([eval.judge])
    # also score each task without the items `lmforge decontaminate` found in the training data
    exclude_contaminated: bool = False
    # score the tasks through this OpenAI-compatible endpoint instead of a local model (a served or
    # external one; [eval.endpoint]): generative ones by its /completions, multiple-choice ones by its
    # prompt log-probs (echo), split into tokens by `model`'s tokenizer (only that loads)
    endpoint: "EndpointConfig | None" = None


class PhaseConfig(Section):
    """One phase of continued pretraining: its own data mix, length, token budget and LR."""

    name: str
    mix: dict[str, float]  # source name -> weight, e.g. {de = 0.75, en = 0.25}
    tokens: int = Field(ge=1, description="token budget of the phase")
    seq_len: int | None = Field(None, ge=8)  # default: train.seq_len
    lr: float | None = Field(None, gt=0)  # default: train.lr, i.e. re-warm to the base's peak LR
    warmup_fraction: float = Field(0.01, ge=0, le=0.5)
    min_lr_ratio: float = Field(0.1, ge=0, le=1)
    schedule: Literal["cosine", "wsd", "constant"] = "cosine"


class AdaptConfig(Section):
    base: str | None = None  # HF folder, run, .gguf file or Hub id; default: this run's newest checkpoint
    trust_remote_code: bool = False
    # source name -> text files (JSONL/Parquet/txt); tokenized with the (extended) base tokenizer
    sources: dict[str, list[str]] = Field(default_factory=dict)
    text_field: str = "text"
    phases: list[PhaseConfig] = Field(default_factory=list)
    embedding_lr_scale: float = Field(1.0, gt=0)
    rope_scaling_factor: float | None = Field(None, gt=1)  # RoPE scaling, e.g. 2 doubles the context
    rope_scaling: Literal["linear", "dynamic", "yarn", "llama3"] = "linear"  # how (adapt/context.py)
    new_tokens: int = Field(0, ge=0, description="target-language tokens to add to the tokenizer")
    new_tokens_from: str | None = None  # source to learn them from (default: the first phase's heaviest)
    # language -> held-out text, scored as bits per byte before and after adaptation
    heldout: dict[str, str] = Field(default_factory=dict)
    tasks: list[str] = Field(default_factory=list)  # eval task specs, scored before and after
    limit: int | None = Field(None, ge=1, description="first N items of each task, before and after")
    max_docs: int | None = Field(None, ge=1, description="first N held-out documents per language")
    target_language: str | None = None
    source_language: str | None = None
    passkey_trials: int = Field(0, ge=0, description="passkey retrieval trials at the old and new length")

    @model_validator(mode="after")
    def _phases_use_known_sources(self) -> "AdaptConfig":
        for p in self.phases:
            unknown = sorted(set(p.mix) - set(self.sources))
            if unknown:
                raise ValueError(f"phase '{p.name}' mixes unknown source(s) {', '.join(unknown)}")
        if self.new_tokens_from and self.new_tokens_from not in self.sources:
            raise ValueError(f"new_tokens_from: unknown source '{self.new_tokens_from}'")
        return self


class SftDataset(Section):
    path: str
    format: Literal["auto", "alpaca", "dolly", "sharegpt", "messages", "oasst1"] = "auto"
    weight: float = Field(1.0, gt=0, description="0.5 = a seeded half of the set, 2 = every conversation twice")
    languages: list[str] = Field(default_factory=list, description="keep only these (empty: all)")
    language: str | None = None  # for records that carry no language tag


class Tuning(Section):
    """What every stage that tunes a model (sft, dpo) is told the same way: the method and its LoRA
    settings, sequence limits, schedule, precision. Each stage adds its own fields and defaults."""

    # adapter: LLaMA-Adapter (peft adaption prompt); adapter_v2: plus a scale and bias on every linear
    # layer and trainable norms (lmforge/models/adapter_v2.py)
    method: Literal["full", "lora", "adapter", "adapter_v2"] = "lora"
    lora_rank: int = Field(16, ge=1)
    lora_alpha: float = Field(32.0, gt=0)
    lora_dropout: float = Field(0.0, ge=0, lt=1)
    # module names, or a preset: "attention", "mlp", "all-linear" (every linear layer but the output)
    lora_targets: list[str] | Literal["attention", "mlp", "all-linear"] = Field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    )
    dora: bool = False  # weight-decomposed LoRA (Liu et al., 2024): a learned magnitude per output
    rslora: bool = False  # rank-stabilised scaling alpha / sqrt(rank) instead of alpha / rank (Kalajdzievski, 2023)
    loraplus_lr_ratio: float | None = Field(None, gt=0)  # LoRA+ (Hayou et al., 2024): B's LR = ratio x A's (~16)
    # QLoRA (Dettmers et al., 2023): the base's linear layers in 4-bit NF4 with double quantisation
    # (bitsandbytes, `lmforge[qlora]`), LoRA on top; saved merged into the 16-bit base
    qlora: bool = False
    max_len: int | None = Field(None, ge=8)  # default: the model's context
    too_long: Literal["skip", "truncate"] = "skip"
    epochs: float = Field(1.0, gt=0)
    batch_size: int = Field(8, ge=1)
    grad_accum: int = Field(1, ge=1)
    lr: float = Field(2e-4, gt=0)
    warmup_steps: int = Field(10, ge=0)
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    log_every: int = Field(10, ge=1)
    checkpoint_every: int = Field(50, ge=1)  # trainable weights + optimizer state, to resume a killed run
    resume: bool = True  # a rerun of a killed run continues it (same final weights)


class SftConfig(Tuning):
    model: str | None = None  # default: the run's newest model (adapted, else its last checkpoint)
    datasets: list[SftDataset] = Field(default_factory=list)
    heldout: list[SftDataset] = Field(default_factory=list)  # loss before and after, per language
    adapter_len: int = Field(10, ge=1)
    adapter_layers: int = Field(2, ge=1)
    merge: bool = True  # LoRA: also save the adapter merged into the base (loads with plain transformers)
    weight_decay: float = Field(0.0, ge=0)
    # after training, answer these (one exchange each) and show them in the report and console
    sample_prompts: list[str] = Field(default_factory=list)
    max_new_tokens: int = Field(48, ge=1)
    # concatenate conversations into rows of max_len tokens, each attending only to itself; a
    # micro-batch is then batch_size such rows (off: batch_size conversations padded to the longest)
    packing: bool = False


class LicensesConfig(Section):
    """SPDX ids per MOF content type; every component takes its type's licence unless overridden."""

    code: str = "Apache-2.0"  # lmforge's own licence: the training, inference and evaluation code
    data: str | None = None  # datasets and evaluation data: the user must say, lmforge cannot know
    documents: str | None = None  # model card, data card, report
    weights: str | None = None  # final and intermediate parameters, model metadata
    components: dict[str, str] = Field(default_factory=dict)  # MOF component name -> SPDX id


class ReleaseConfig(Section):
    model: str | None = None  # default: the run's newest model (chat, adapted, last checkpoint)
    name: str | None = None  # default: the run's name
    version: str = "0.1.0"
    producer: str = "unknown"
    contact: str = ""
    repository: str = ""  # where the code lives (URL); the release also carries a copy
    hub_repo: str | None = None  # the Hub id it is (or will be) published under
    dtype: Literal["fp32", "bf16", "fp16"] = "fp32"
    licenses: LicensesConfig = Field(default_factory=LicensesConfig)
    datasets: list[str] = Field(default_factory=list)  # Hub dataset ids of the training data, where known
    include_data: bool = True  # copy the curated/SFT/eval data into the release (small runs)
    include_checkpoints: bool = True  # copy the intermediate checkpoints (the log-spaced suite)
    research_paper: str | None = None  # a paper about the model: lmforge cannot write one
    intended_use: str = ""
    limitations: str = ""


class ExportConfig(Section):
    model: str | None = None  # default: the run's release model, else its newest model
    types: list[Literal["f32", "f16", "bf16", "q8_0", "q4_0", "q4_k_m", "q5_k_m", "q6_k"]] = Field(
        default_factory=lambda: ["f16"]
    )
    out: str | None = None  # default: <run>/release (next to the HF folder)
    verify_prompts: list[str] = Field(default_factory=list)  # greedy check in llama.cpp after writing


class EndpointConfig(Section):
    """An OpenAI-compatible endpoint. The key is read from `api_key_env` and never written down."""

    base_url: str = "http://127.0.0.1:8000/v1"  # `lmforge serve` by default
    model: str | None = None  # default: the endpoint's only model (GET /models), when it serves one
    api_key_env: str | None = "OPENAI_API_KEY"
    concurrency: int = Field(8, ge=1, le=256)
    timeout_s: float = Field(120.0, gt=0)  # streamed: the longest silence between two chunks
    stream: bool = True  # stream replies; a client that gives up then frees the server's slot
    max_retries: int = Field(5, ge=0)
    backoff_s: float = Field(1.0, ge=0)  # first retry waits up to this, doubling each time (full jitter)
    max_backoff_s: float = Field(60.0, ge=0)
    temperature: float = Field(0.0, ge=0)
    max_tokens: int = Field(2048, ge=1)
    price_per_1k_prompt: float | None = Field(None, ge=0)  # currency per 1,000 prompt tokens
    price_per_1k_completion: float | None = Field(None, ge=0)


class TranslateConfig(Section):
    inputs: list[str] = Field(default_factory=list)  # instruction files, or task specs (.toml/.yaml)
    format: Literal["auto", "alpaca", "dolly", "sharegpt", "messages", "oasst1"] = "auto"
    source_language: str = "en"
    target_language: str = "de"
    endpoint: EndpointConfig = Field(default_factory=EndpointConfig)
    retries: int = Field(1, ge=0, description="re-asks of a record whose translation failed a check")
    keep_both: bool = False  # also write the original records (a bilingual mix, as LeoLM trained)
    min_length_ratio: float = Field(0.5, gt=0)
    max_length_ratio: float = Field(2.0, gt=0)
    language_threshold: float = Field(0.5, ge=0, le=1)
    out: str | None = None  # default: <run>/translate


class SelfInstructConfig(Section):
    seeds: str = Field(default_factory=lambda: sample("self_instruct/seeds_en.jsonl"))
    language: str = "en"
    endpoint: EndpointConfig = Field(default_factory=lambda: EndpointConfig(temperature=0.7))

    @field_validator("endpoint", mode="before")
    @classmethod
    def _samples(cls, v):
        """Self-Instruct samples at 0.7 where the other endpoint users decode greedily; an endpoint
        given without a temperature (a URL from a flag) keeps that default."""
        return {**v, "temperature": 0.7} if isinstance(v, dict) and "temperature" not in v else v

    target: int = Field(50, ge=1, description="instructions to keep")
    rounds: int = Field(20, ge=1, description="at most this many generation rounds")
    prompts_per_round: int = Field(4, ge=1, description="generation requests per round")
    seed_demos: int = Field(6, ge=0)
    generated_demos: int = Field(2, ge=0)
    max_similarity: float = Field(0.7, gt=0, le=1)  # ROUGE-L F against every instruction in the pool
    min_words: int = Field(3, ge=1)
    max_words: int = Field(150, ge=1)
    seed: int = 0
    out: str | None = None  # default: <run>/self_instruct


class ReverseInstructConfig(Section):
    """LongForm's reverse instructions: an endpoint writes the request each document answers."""

    inputs: list[str] = Field(default_factory=list)  # documents: JSONL/Parquet files or folders (curate's output)
    text_field: str = "text"
    languages: list[str] = Field(default_factory=list)  # keep documents in these (empty: all)
    endpoint: EndpointConfig = Field(default_factory=lambda: EndpointConfig(temperature=0.7, max_tokens=96))

    @field_validator("endpoint", mode="before")
    @classmethod
    def _request_sized(cls, v):
        """A request is one short line, sampled for variety: these defaults also hold for an
        endpoint given as a URL from a flag."""
        return {"temperature": 0.7, "max_tokens": 96, **v} if isinstance(v, dict) else v

    limit: int = Field(100, ge=1, description="documents sampled (seeded) and asked about")
    min_doc_words: int = Field(40, ge=1)
    max_doc_words: int = Field(1500, ge=1)
    min_words: int = Field(3, ge=1)  # of the request
    max_words: int = Field(60, ge=1)
    max_copied_words: int = Field(10, ge=2)  # a run this long taken from the document: copied
    max_similarity: float = Field(0.7, gt=0, le=1)  # ROUGE-L F against every kept request
    length_hint: bool = True  # append "Answer in about N words" (not to search queries)
    seed: int = 0
    out: str | None = None  # default: <run>/reverse_instruct


class DistillConfig(Section):
    """Distilling step-by-step (Hsieh et al., 2023): a teacher's rationales as a second training task."""

    task: str | None = None  # a generative task spec whose few-shot examples have worked solutions
    train_data: str | None = None  # the training inputs, in the task's item layout (answers = gold labels)
    endpoint: EndpointConfig = Field(default_factory=EndpointConfig)  # the teacher, greedy by default
    shots: int = Field(3, ge=1)  # worked examples in the teacher's prompt
    disagreeing: Literal["drop", "keep"] = "drop"  # inputs whose teacher label is not the gold one
    rationale_weight: float = Field(1.0, ge=0)  # λ: the rationale task's loss weight
    sizes: list[float] = Field(default_factory=lambda: [0.25, 0.5, 1.0])  # shares of the kept inputs
    model: str | None = None  # the student; default: the run's newest model
    sft: SftConfig = Field(default_factory=lambda: SftConfig(method="full", epochs=3, lr=1e-4, batch_size=8))
    label_tokens: int = Field(24, ge=1)  # new tokens when the student answers a held-out item
    limit: int | None = Field(None, ge=1)  # held-out items scored (default: all of the task's)
    seed: int = 0


class JudgeConfig(Section):
    """MT-Bench-style judging of a chat model by an LLM judge behind an OpenAI-compatible endpoint."""

    model: str | None = None  # the model answering (folder, run, GGUF, Hub id); default: the run's newest
    model_id: str | None = None  # its name in the answer and judgment files
    answers_endpoint: EndpointConfig | None = None  # answer through an endpoint instead of a local model
    questions: dict[str, str] = Field(
        default_factory=lambda: {  # the samples shipped with lmforge
            lang: sample(f"judge/{lang}/question.jsonl") for lang in ("en", "de")
        }
    )
    references: dict[str, str] = Field(
        default_factory=lambda: {
            lang: sample(f"judge/{lang}/reference_answer/reference.jsonl") for lang in ("en", "de")
        }
    )
    judge: EndpointConfig = Field(default_factory=EndpointConfig)
    mode: Literal["single", "pairwise", "both"] = "single"
    baseline_answers: dict[str, str] = Field(default_factory=dict)  # language -> FastChat answer file
    baseline_model: str | None = None  # or answer with this model first
    language_check: bool = True  # an answer in the wrong language gets the minimum rating
    max_new_tokens: int = Field(512, ge=1)
    bootstrap_samples: int = Field(1000, ge=100)
    out: str | None = None  # default: <run>/judge


class PreferenceDataset(Section):
    path: str
    # see lmforge/dpo/data.py; unpaired ({"prompt", "completion", "label"}) trains KTO only
    format: Literal["auto", "plain", "conversational", "hh", "unpaired"] = "auto"
    weight: float = Field(1.0, gt=0)
    languages: list[str] = Field(default_factory=list)
    language: str | None = None


class DpoConfig(Tuning):
    model: str | None = None  # default: the run's newest model (its chat model after `sft`)
    datasets: list[PreferenceDataset] = Field(default_factory=list)
    heldout: list[PreferenceDataset] = Field(default_factory=list)  # preference accuracy before and after
    from_judge: str | None = None  # a pairwise `judge` output folder: its decided pairs become training data
    judge: "JudgeConfig | None" = None  # after training: pairwise win rate against the starting (SFT) model
    # sigmoid (DPO), ipo: against the reference; orpo, simpo: no reference; kto: unpaired answers
    loss: Literal["sigmoid", "ipo", "kto", "orpo", "simpo"] = "sigmoid"
    beta: float = Field(0.1, gt=0)  # orpo: λ, the odds-ratio term's weight; simpo: its β (the paper: 2-2.5)
    label_smoothing: float = Field(0.0, ge=0, lt=0.5)  # conservative DPO (and SimPO)
    simpo_gamma: float = Field(0.5, ge=0)  # SimPO's target reward margin γ
    sft_weight: float = Field(0.0, ge=0)  # SimPO: + this x the chosen sequences' NLL (CPO's alpha; 0 as published)
    desirable_weight: float = Field(1.0, gt=0)  # KTO: weights of desirable and undesirable answers' losses
    undesirable_weight: float = Field(1.0, gt=0)
    method: Literal["full", "lora"] = "lora"  # no LLaMA-Adapter: its prompts have no reference to disable
    batch_size: int = Field(8, ge=1, description="pairs per micro-batch")
    # batches of pairs of similar packed length: ~30% less padding, but batches of similar pairs,
    # which learned measurably less per step on the shipped sample (see dpo/train.py)
    group_by_length: bool = False
    lr: float = Field(5e-6, gt=0)


class DecontaminateConfig(Section):
    """Which evaluation items the run's training data contains (word n-gram overlap)."""

    tasks: list[str] = Field(default_factory=list)  # task specs; default: the run's eval tasks
    judge_questions: dict[str, str] | None = None  # language -> question.jsonl; default: the run's judge's
    # source name -> files or folders; default: the training data the run's manifest records
    sources: dict[str, list[str]] = Field(default_factory=dict)
    ngram: int = Field(13, ge=4)  # GPT-3's and OLMo's n
    min_ngram: int = Field(6, ge=2)  # items shorter than this many words are not checked


class MergeConfig(Section):
    """Model merging over HF folders of one architecture (lmforge/merge); the result is <run>/merged."""

    # linear: weighted average of `models`; task_arithmetic, ties, dare: `base` + the models' task
    # vectors; slerp: two models; chat_vector: `onto` + (`chat` - `base`)
    method: Literal["linear", "task_arithmetic", "slerp", "ties", "dare", "chat_vector"] = "linear"
    models: list[str] = Field(default_factory=list)
    weights: list[float] = Field(default_factory=list)  # one per model (chat_vector: one, the vector's); default 1
    base: str | None = None
    chat: str | None = None  # chat_vector: the chat model tuned from `base`
    onto: str | None = None  # chat_vector: `base` adapted (continued pretraining, extended tokenizer)
    t: float = Field(0.5, ge=0, le=1)  # slerp: 0 is the first model, 1 the second
    density: float = Field(0.5, gt=0, le=1)  # ties: share of each task vector kept; dare: keep probability
    tokenizer_from: str | None = None  # needed when the inputs' tokenizers differ (not for chat_vector)
    heldout: list[SftDataset] = Field(default_factory=list)  # chat loss per language: inputs vs result
    shard_mb: int = Field(2048, ge=1)  # output shard size: the most of the result held at once


class Recipe(Section):
    run: RunConfig = Field(default_factory=RunConfig)
    curate: CurateConfig = Field(default_factory=CurateConfig)
    tokenizer: TokenizerConfig = Field(default_factory=TokenizerConfig)
    tokenize: TokenizeConfig = Field(default_factory=TokenizeConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    adapt: AdaptConfig = Field(default_factory=AdaptConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    generate: GenerateConfig = Field(default_factory=GenerateConfig)
    sft: SftConfig = Field(default_factory=SftConfig)
    release: ReleaseConfig = Field(default_factory=ReleaseConfig)
    export: ExportConfig = Field(default_factory=ExportConfig)
    translate: TranslateConfig = Field(default_factory=TranslateConfig)
    self_instruct: SelfInstructConfig = Field(default_factory=SelfInstructConfig)
    judge: JudgeConfig = Field(default_factory=JudgeConfig)
    dpo: DpoConfig = Field(default_factory=DpoConfig)
    decontaminate: DecontaminateConfig = Field(default_factory=DecontaminateConfig)
    merge: MergeConfig = Field(default_factory=MergeConfig)
    reverse_instruct: ReverseInstructConfig = Field(default_factory=ReverseInstructConfig)
    distill: DistillConfig = Field(default_factory=DistillConfig)


EvalConfig.model_rebuild()
DpoConfig.model_rebuild()
