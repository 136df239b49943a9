"""Run fla's Triton kernels on a CPU through Triton's interpreter (``TRITON_INTERPRET=1``).

Out of the box the interpreter cannot run fla 0.6's layers; ``enable()`` applies the four
in-process changes described in ``shared/notes/triton-interpreter.md``:

1. Autotuner: ``Autotuner.run`` asks the (absent) GPU driver for a benchmarker; it now runs
   the first config (calling that config's ``pre_hook``) and never benchmarks.
2. Loop variables: the interpreter's AST rewriter turns assignment targets into interpreter
   tensors but not ``for`` targets, so ``i_t.to(tl.int64)`` meets a Python int. A ``visit_For``
   converts each loop variable with ``interpreter_semantic.to_tensor`` at the top of the body.
3. libdevice: ``triton.language.extra.libdevice`` holds empty stubs the compiler swaps for
   CUDA's libdevice; the interpreter does not, so ``log1p`` returns None. The stubs get numpy
   implementations.
4. Speed: a custom ``tl.associative_scan`` is interpreted one element at a time; it now combines
   one slice along the scan axis per step (same left-to-right order, LightNet ~5x faster).

Only ever for a process that interprets: ``enable()`` refuses when ``TRITON_INTERPRET`` is not
``"1"`` or when CUDA is available, because these patches would break real GPU kernels.
"""

from __future__ import annotations

import ast
import os
from collections.abc import Callable

import numpy as np

_MARK = "_mixbench_interpreter_patch"


def enable() -> None:
    """Patch Triton's interpreter so fla's layers run on CPU. Idempotent."""
    if os.environ.get("TRITON_INTERPRET") != "1":
        raise RuntimeError(
            "bench.interpreter.enable() patches Triton's interpreter only: expected TRITON_INTERPRET='1', "
            f"got {os.environ.get('TRITON_INTERPRET')!r} (set it before anything imports fla)"
        )
    import torch

    if torch.cuda.is_available():
        raise RuntimeError(
            "bench.interpreter.enable() refuses to patch Triton in a process that can use a GPU "
            f"(torch.cuda.is_available() is True, {torch.cuda.device_count()} device(s))"
        )
    _patch_autotuner()
    _patch_for_loops()
    _patch_libdevice()
    _patch_scan()


def _already(obj: object) -> bool:
    return getattr(obj, _MARK, False)


def _mark(fn: Callable) -> Callable:
    setattr(fn, _MARK, True)
    return fn


def _patch_autotuner() -> None:
    from triton.runtime.autotuner import Autotuner

    if _already(Autotuner.run):
        return

    def run_first_config(self, *args, **kwargs):
        # No driver means no benchmarker: take the first config, as a one-config autotune would.
        self.nargs = dict(zip(self.arg_names, args))
        config = self.configs[0]
        self.best_config = config
        if config.pre_hook is not None:
            config.pre_hook({**self.nargs, **kwargs, **config.all_kwargs()})
        result = self.fn.run(*args, **kwargs, **config.all_kwargs())
        self.nargs = None
        return result

    Autotuner.run = _mark(run_first_config)


def _patch_for_loops() -> None:
    from triton.runtime.interpreter import ASTTransformer

    if _already(getattr(ASTTransformer, "visit_For", None)):
        return

    def visit_for(self, node: ast.For) -> ast.For:
        node = self.generic_visit(node)
        target = node.target
        names = [target] if isinstance(target, ast.Name) else [
            e for e in getattr(target, "elts", []) if isinstance(e, ast.Name)
        ]
        # i = interpreter_semantic.to_tensor(i, False), as visit_Assign does for assignments.
        converts = [
            ast.Assign(
                targets=[ast.Name(id=name.id, ctx=ast.Store())],
                value=ast.Call(
                    func=ast.Attribute(value=ast.Name(id="interpreter_semantic", ctx=ast.Load()),
                                       attr="to_tensor", ctx=ast.Load()),
                    args=[ast.Name(id=name.id, ctx=ast.Load()), ast.Constant(value=False)],
                    keywords=[],
                ),
            )
            for name in names
        ]
        node.body[:0] = converts
        return node

    ASTTransformer.visit_For = _mark(visit_for)


def _round_half_away(x: np.ndarray) -> np.ndarray:
    # CUDA's round() rounds halves away from zero; numpy's rint rounds them to even.
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


_UNARY: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "exp": np.exp, "exp2": np.exp2, "expm1": np.expm1, "log": np.log, "log2": np.log2, "log10": np.log10,
    "log1p": np.log1p, "tanh": np.tanh, "sinh": np.sinh, "cosh": np.cosh, "sin": np.sin, "cos": np.cos,
    "tan": np.tan, "sqrt": np.sqrt, "rsqrt": lambda x: 1.0 / np.sqrt(x), "floor": np.floor, "ceil": np.ceil,
    "trunc": np.trunc, "rint": np.rint, "round": _round_half_away,
    "fast_expf": np.exp, "fast_exp10f": lambda x: np.power(10.0, x).astype(x.dtype), "fast_logf": np.log,
    "fast_log2f": np.log2, "fast_log10f": np.log10, "fast_tanhf": np.tanh, "fast_sinf": np.sin,
    "fast_cosf": np.cos, "fast_tanf": np.tan,
}
_BINARY: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "pow": np.power, "fast_powf": np.power, "atan2": np.arctan2, "fmod": np.fmod,
    "fmin": np.fmin, "fmax": np.fmax,
}


def _numpy_device_fn(np_fn: Callable[..., np.ndarray]) -> Callable:
    def device_fn(*args, **_kwargs):
        import triton.language as tl
        from triton.runtime.interpreter import TensorHandle, interpreter_semantic

        tensors = [interpreter_semantic.to_tensor(a) for a in args]
        first = tensors[0]
        with np.errstate(all="ignore"):
            data = np.asarray(np_fn(*(t.handle.data for t in tensors))).astype(first.handle.data.dtype)
        scalar = first.type.scalar
        is_block = any(t.type.is_block() for t in tensors)
        result_type = tl.block_type(scalar, list(data.shape)) if is_block else scalar
        return tl.tensor(TensorHandle(data, scalar), result_type)

    return _mark(device_fn)


def _patch_libdevice() -> None:
    from triton.language.extra import libdevice

    # Replace the module's attributes: fla calls them as ``tldevice.log1p`` on the module object.
    for table in (_UNARY, _BINARY):
        for name, np_fn in table.items():
            if hasattr(libdevice, name) and not _already(getattr(libdevice, name)):
                setattr(libdevice, name, _numpy_device_fn(np_fn))


def _patch_scan() -> None:
    from triton.runtime.interpreter import ScanOps

    if _already(ScanOps.generic_scan):
        return

    def sliced_scan(self, inputs):
        import triton.language as tl

        data = [arg.handle.data for arg in inputs]
        outputs = [np.empty_like(d) for d in data]
        index: list = [slice(None)] * data[0].ndim
        acc = None
        for step in range(data[0].shape[self.axis]):
            index[self.axis] = step
            at = tuple(index)
            current = tuple(self.to_tensor(d[at], arg.dtype) for d, arg in zip(data, inputs))
            if acc is None:
                acc = current
            else:
                combined = self.combine_fn.fn(*acc, *current)
                combined = combined if isinstance(combined, tuple) else (combined,)
                acc = tuple(c if isinstance(c, tl.tensor) else self.to_tensor(c, arg.dtype)
                            for c, arg in zip(combined, inputs))
            for out, value in zip(outputs, acc):
                out[at] = value.handle.data.reshape(out[at].shape)
        return [self.to_tensor(out, arg.dtype) for out, arg in zip(outputs, inputs)]

    ScanOps.generic_scan = _mark(sliced_scan)
