"""The recipe schema: one pydantic model per stage section.

Every model forbids unknown keys so that a typo (`train.lrr`) is an error naming the key,
never a setting that silently does nothing. Paths left as `None` mean "the standard place in
the run directory", which is what lets every stage run alone or inside `lmforge run`.
"""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Stage = Literal["tokenizer", "tokenize", "pretrain", "eval", "generate"]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class RunConfig(Section):
    name: str = "run"
    out_dir: str = "runs"
    seed: int = 1337
    stages: list[Stage] = Field(default_factory=lambda: ["tokenizer", "tokenize", "pretrain", "generate"])


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
    fsdp: bool = False
    checkpoint_every: int = Field(500, ge=1)
    log_spaced_checkpoints: bool = True
    log_every: int = Field(10, ge=1)
    eval_every: int = Field(100, ge=1)
    eval_batches: int = Field(8, ge=1)
    resume: bool = True
    tensorboard: bool = False
    wandb: bool = False
    wandb_project: str = "lmforge"


class GenerateConfig(Section):
    checkpoint: str | None = None
    prompts: list[str] = Field(default_factory=lambda: ["The"])
    max_new_tokens: int = Field(64, ge=1)
    temperature: float = Field(0.8, ge=0)
    top_k: int = Field(50, ge=0)
    top_p: float = Field(0.95, gt=0, le=1)
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


class Recipe(Section):
    run: RunConfig = Field(default_factory=RunConfig)
    tokenizer: TokenizerConfig = Field(default_factory=TokenizerConfig)
    tokenize: TokenizeConfig = Field(default_factory=TokenizeConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    generate: GenerateConfig = Field(default_factory=GenerateConfig)
