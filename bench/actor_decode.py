"""Actor decoding and dispatch benchmark.

1. Structured decoding (vlac_actor.decoding): forward passes and latency per action, batch 1 and 4,
   against generating the same number of tokens freely with transformers' ``generate`` (KV cache,
   greedy), i.e. what an unconstrained decoder pays for the same action text. Ratio = free / structured.
2. Assignment latency of the replica pool (request received -> assigned to an idle replica) with
   1, 4 and 8 concurrent closed-loop clients on 2 replicas, each replica taking 1 (or up to 4)
   waiting requests per batch.

Builds a tiny offline model unless ``--model-dir`` is given (a policy checkpoint; a missing value head
is initialised fresh). Prints a line per measurement and, as its last line, one JSON object.
Usage: python bench/actor_decode.py [--spec tiny|small] [--repeats 20] [--device cpu] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import threading
import time

import numpy as np
import torch

SPECS = {
    "tiny": {},
    "small": {"vision_hidden": 128, "vision_layers": 4, "text_hidden": 256, "text_layers": 4},
}


def _observation(seed: int):
    from vlac_core.types import EndPose, Observation

    rng = np.random.default_rng(seed)
    return Observation(
        robot_id=f"arm_{seed % 8}",
        task="pick up the red cube and put it in the bowl",
        images=(rng.integers(0, 256, (480, 640, 3), dtype=np.uint8),),
        end_pose=EndPose(250.0, -20.0, 180.0, 170.0, 5.0, -90.0),
        gripper_open=True,
        gripper_mm=40.0,
        joints_rad=(0.0,) * 6,
        stamp_s=float(seed),
        seq=seed,
    )


def _p(values, q):
    return float(np.percentile(values, q)) if values else 0.0


def bench_decoding(policy, repeats: int, batch: int) -> dict:
    from vlac_actor.decoding import SamplingSettings, decode_actions
    from vlac_actor.inputs import InputLimits, actor_content
    from vlac_core.model import encode

    pairs = [actor_content(_observation(i), InputLimits()) for i in range(batch)]
    contents, images = [c for c, _ in pairs], [i for _, i in pairs]
    settings = [SamplingSettings(temperature=1.0)] * batch
    generator = torch.Generator().manual_seed(0)
    decode_actions(policy, contents, images, settings, generator)  # warm-up
    structured_s, passes, tokens, decisions = [], [], [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = decode_actions(policy, contents, images, settings, generator)
        structured_s.append(time.perf_counter() - t0)
        passes.append(out[0].forward_passes)
        tokens += [len(a.token_ids) for a in out]
        decisions += [len(a.token_logprobs) for a in out]

    n_tokens = round(statistics.mean(tokens))
    model, tok = policy.loaded.model, policy.loaded.tokenizer
    batch_inputs = encode(policy.loaded, contents, images)
    free_kwargs = dict(
        do_sample=False, min_new_tokens=n_tokens, max_new_tokens=n_tokens, pad_token_id=tok.pad_token_id, top_k=None
    )
    with torch.inference_mode():
        model.generate(**batch_inputs, **free_kwargs)  # warm-up
        free_s = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            model.generate(**batch_inputs, **free_kwargs)
            free_s.append(time.perf_counter() - t0)
    structured_ms = 1000 * statistics.median(structured_s)
    free_ms = 1000 * statistics.median(free_s)
    return {
        "batch": batch,
        "tokens_per_action": statistics.mean(tokens),
        "decisions_per_action": statistics.mean(decisions),
        "structured_forward_passes": statistics.mean(passes),
        "free_forward_passes": n_tokens,
        "steps_ratio_free_over_structured": n_tokens / statistics.mean(passes),
        "structured_ms_per_batch": structured_ms,
        "structured_ms_per_action": structured_ms / batch,
        "free_ms_per_batch": free_ms,
        "latency_ratio_free_over_structured": free_ms / structured_ms,
    }


def bench_assignment(backends, clients: int, requests_per_client: int, max_batch: int) -> dict:
    from vlac_actor.decoding import SamplingSettings
    from vlac_actor.pool import ReplicaPool
    from vlac_actor.request import ActorRequest

    waits, latencies = [], []
    lock = threading.Lock()

    def client(c: int) -> None:
        for k in range(requests_per_client):
            request = ActorRequest(_observation(c * 1000 + k), sampling=SamplingSettings())
            result = pool.act(request, timeout_s=600)
            with lock:
                waits.append(result.queue_wait_s)
                latencies.append(result.action.inference_latency_s)

    with ReplicaPool(backends, max_batch=max_batch) as pool:
        threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall_s = time.perf_counter() - t0
    return {
        "clients": clients,
        "replicas": len(backends),
        "max_batch": max_batch,
        "requests": len(waits),
        "assign_wait_p50_ms": 1000 * _p(waits, 50),
        "assign_wait_p95_ms": 1000 * _p(waits, 95),
        "assign_wait_max_ms": 1000 * max(waits),
        "share_assigned_within_100ms": float(np.mean(np.asarray(waits) <= 0.1)),
        "latency_p50_ms": 1000 * _p(latencies, 50),
        "actions_per_s": len(waits) / wall_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", default=None, help="policy checkpoint (default: build a tiny model)")
    parser.add_argument("--spec", choices=sorted(SPECS), default="tiny")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--requests-per-client", type=int, default=6)
    parser.add_argument(
        "--max-batch", type=int, nargs="+", default=[1, 4], help="pool: requests one replica decodes together"
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (shared by both replicas)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from vlac_actor.backend import TorchBackend
    from vlac_actor.policy import load_policy
    from vlac_core.model import TinyModelSpec, build_tiny_model

    with tempfile.TemporaryDirectory() as tmp:
        model_dir = args.model_dir or build_tiny_model(os.path.join(tmp, "model"), TinyModelSpec(**SPECS[args.spec]))
        policy = load_policy(model_dir, device=args.device, allow_fresh_value_head=True)
        n_params = sum(p.numel() for p in policy.loaded.model.parameters())
        decoding = []
        for batch in (1, 4):
            result = bench_decoding(policy, args.repeats, batch)
            decoding.append(result)
            print(
                f"decode B{batch}: {result['structured_forward_passes']:.0f} passes vs {result['free_forward_passes']} "
                f"tokens; {result['structured_ms_per_batch']:.1f} ms structured vs {result['free_ms_per_batch']:.1f} "
                f"ms free (x{result['latency_ratio_free_over_structured']:.2f})"
            )
        replicas = [
            TorchBackend(load_policy(model_dir, device=args.device, allow_fresh_value_head=True), seed=i)
            for i in range(2)
        ]
        assignment = []
        for max_batch, clients in [(b, c) for b in args.max_batch for c in (1, 4, 8)]:
            result = bench_assignment(replicas, clients, args.requests_per_client, max_batch)
            assignment.append(result)
            print(
                f"pool 2 replicas, max_batch {max_batch}, {clients} clients: "
                f"assign p50 {result['assign_wait_p50_ms']:.1f} ms, "
                f"p95 {result['assign_wait_p95_ms']:.1f} ms, max {result['assign_wait_max_ms']:.1f} ms, "
                f"{result['actions_per_s']:.1f} actions/s"
            )
    print(
        json.dumps(
            {
                "bench": "actor_decode",
                "spec": "custom" if args.model_dir else args.spec,
                "params": n_params,
                "device": args.device,
                "torch_threads": args.threads,
                "torch": torch.__version__,
                "cpu_count": os.cpu_count(),
                "machine": platform.machine(),
                "image_px_in": [480, 640],
                "decoding": decoding,
                "assignment": assignment,
            }
        )
    )


if __name__ == "__main__":
    main()
