"""Answer choices scored through an OpenAI-compatible endpoint: each context + choice sent as token
ids to `/completions` with `echo` and `logprobs`, the choice's log-likelihood summed from the
prompt's own token log-probs. This is how lm-eval's local-completions scores against vLLM or
`lmforge serve`; here the ids are lmforge's own split of each item (`encode_item`, with the served
model's tokenizer), so a served model's decisions are the ones `lmforge eval` makes on it locally.
"""

from lmforge.endpoint import EndpointError
from lmforge.eval.loglikelihood import Encoded


def endpoint_loglikelihoods(client, encoded: list[Encoded]) -> list[list[float]]:
    """Each item's choice log-likelihoods, `client.cfg.concurrency` requests at a time (cached and
    retried by the shared client)."""
    jobs = [(i, j) for i, e in enumerate(encoded) for j in range(len(e.choices))]

    def ask(job: tuple[int, int]) -> float:
        e = encoded[job[0]]
        start, end = len(e.context), len(e.context) + len(e.choices[job[1]])
        reply = client.score(e.context + e.choices[job[1]])
        given = (reply.logprobs or {}).get("token_logprobs")
        if not isinstance(given, list) or len(given) < end:
            raise EndpointError(
                f"{client.cfg.base_url}: no log-probs for the prompt's {end} tokens in its reply; scoring choices "
                "needs /completions with echo and logprobs (vLLM and `lmforge serve` have them)",
                "no logprobs",
            )
        chosen = given[start:end]
        if not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in chosen):
            raise EndpointError(f"{client.cfg.base_url}: a choice token's log-prob is not a number", "no logprobs")
        return float(sum(chosen))

    flat = client.map(ask, jobs, progress="scoring choices")
    failed = [r for r in flat if isinstance(r, Exception)]
    if failed:  # a missing log-likelihood would decide the item: fail instead of guessing
        raise EndpointError(
            f"{len(failed)} of {len(flat)} scoring requests failed for good; first: {failed[0]}", "failed"
        )
    out, at = [], 0
    for e in encoded:
        out.append(flat[at : at + len(e.choices)])
        at += len(e.choices)
    return out
