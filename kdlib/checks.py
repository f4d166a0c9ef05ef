"""Readable feedback for the notebooks' test cells: say what was expected, what came, and a hint."""
import functools
import sys
import threading
import types

import torch


# the torch release the stored lessons were executed with: their quoted numbers are this release's
REFERENCE_TORCH = "2.13"


def check(condition, message):
    """Fail with ``message`` (not a bare AssertionError) unless ``condition`` holds."""
    if not condition:
        raise AssertionError(message)


def reference_run():
    """Whether this process should reproduce the stored lessons' numbers: torch's AVX2 CPU kernels (as
    ``import kdlib`` pins them on x86-64), torch REFERENCE_TORCH, and CUDA unused."""
    return (torch.backends.cpu.get_cpu_capability() == "AVX2" and torch.__version__.startswith(REFERENCE_TORCH + ".")
            and not torch.cuda.is_initialized())


def check_claim(condition, message):
    """A sentence of a lesson's text, checked against this run. On the reference run (``reference_run``) a claim
    that fails stops the cell: the text must change. Elsewhere (Apple silicon, a GPU, another torch release) sums
    round differently and training amplifies that, so the numbers move a little: the claim is reported, and the
    lesson goes on."""
    if condition:
        return
    if reference_run():
        raise AssertionError(message)
    _explain_once()
    print(f"ⓘ Not as in the text on this machine: {message.removesuffix(': update the text')}")


@functools.cache
def _explain_once():
    print(f"ⓘ The text's numbers come from the course's reference run (an x86-64 CPU with AVX2 kernels, torch "
          f"{REFERENCE_TORCH}); this machine rounds differently, so some land a little off. Compare the shape.")


def check_close(name, got, expected, hint="", atol=1e-6, rtol=1e-5):
    """Fail unless ``got`` has the shape and values of ``expected``, showing both and the hint."""
    check(torch.is_tensor(got), f"{name}: expected a torch.Tensor, got {type(got).__name__}. {hint}")
    check(got.is_floating_point() or not torch.is_floating_point(torch.as_tensor(expected)),
          f"{name}: expected floating-point values, got dtype {got.dtype}. {hint}")
    # both compared on the CPU: a learner's answer on a GPU or MPS is judged by its values, not its device
    got = got.detach().cpu()
    expected = torch.as_tensor(expected).detach().cpu().to(got.dtype)
    check(got.shape == expected.shape,
          f"{name}: expected shape {tuple(expected.shape)}, got {tuple(got.shape)}. {hint}")
    check(torch.allclose(got, expected, atol=atol, rtol=rtol),
          f"{name}: expected\n{expected}\ngot\n{got}\n{hint}")
    print(f"✓ {name}")


def check_own_code(name, function, *args, forbidden=()):
    """Fail if ``function(*args)`` runs any of the ``forbidden`` kdlib functions: write it yourself.

    The grader's policy: where an exercise is to implement a kdlib function, calling kdlib's
    version (under any name or alias) earns no points. A profiler hook sees every Python call, in this
    thread and in threads started meanwhile; running a copy of kdlib's code (exec of its source) counts
    as calling it, and so does switching the hook off, which the hook sees as a call too.
    """
    forbidden_code = {_code_key(f.__code__): f"{f.__module__}.{f.__name__}" for f in forbidden}
    setter_code = {threading.setprofile.__code__, threading.settrace.__code__}
    called, watching = set(), [True]

    def profile(frame, event, arg):
        if not watching:
            return
        if event == "call" and _code_key(frame.f_code) in forbidden_code:
            called.add(forbidden_code[_code_key(frame.f_code)])
        elif (event == "c_call" and (arg is sys.setprofile or arg is sys.settrace)
              or event == "call" and frame.f_code in setter_code):
            called.add("sys.setprofile (switching off the check)")

    previous, previous_in_threads = sys.getprofile(), threading.getprofile()
    threading.setprofile(profile)  # first: the hook would see this call
    sys.setprofile(profile)
    try:
        function(*args)
    finally:
        watching.clear()  # not a call: the hook sees no event for it
        if sys.getprofile() is not profile:
            called.add("sys.setprofile (switching off the check)")
        threading.setprofile(previous_in_threads)
        sys.setprofile(previous)
    check(not called, f"{name} calls {', '.join(sorted(called))}: this exercise asks you to implement it "
                      "yourself, so calling kdlib's version earns no points.")
    print(f"✓ {name} is your own code")


@functools.cache
def _code_key(code):
    """What makes two code objects the same function, whatever file, line or compiler settings made them: its name,
    the names it uses and its constants (kdlib's docstring among them, so honest code never matches)."""
    constants = tuple(_code_key(c) if isinstance(c, types.CodeType) else (type(c), c) for c in code.co_consts)
    return code.co_name, code.co_names, code.co_varnames, code.co_freevars, constants


def yours_or_kdlib(name, yours, reference, *example_args, agree=None):
    """The function the rest of a lesson uses: ``yours`` if it already does what kdlib's ``reference`` does on
    ``example_args``, else ``reference``, saying so in one line. Grading is not affected: the graded tests still
    grade your own function; this only lets a learner stuck on an exercise see the rest of the lesson run.

    ``agree(got, expected)`` compares the two results (default: tensors, or tuples of them, close in value).
    """
    agree = agree or _results_close
    try:
        works = bool(agree(yours(*example_args), reference(*example_args)))
    except Exception:  # NotImplementedError from the stub, or any bug: the lesson goes on with kdlib's version
        works = False
    if works:
        print(f"✓ the rest of this lesson uses your {name}")
        return yours
    print(f"your {name} is not finished yet: the rest of this lesson uses {reference.__module__}.{reference.__name__}")
    return reference


def _results_close(got, expected):
    if isinstance(expected, (tuple, list)):
        return (isinstance(got, (tuple, list)) and len(got) == len(expected)
                and all(_results_close(g, e) for g, e in zip(got, expected)))
    if torch.is_tensor(expected):
        return (torch.is_tensor(got) and got.shape == expected.shape
                and torch.allclose(got.detach().cpu().to(expected.dtype), expected.detach().cpu(), atol=1e-5, rtol=1e-4))
    return got == expected
