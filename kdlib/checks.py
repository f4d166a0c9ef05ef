"""Readable feedback for the notebooks' test cells: say what was expected, what came, and a hint."""
import sys

import torch


def check(condition, message):
    """Fail with ``message`` (not a bare AssertionError) unless ``condition`` holds."""
    if not condition:
        raise AssertionError(message)


def check_close(name, got, expected, hint="", atol=1e-6, rtol=1e-5):
    """Fail unless ``got`` has the shape and values of ``expected``, showing both and the hint."""
    check(torch.is_tensor(got), f"{name}: expected a torch.Tensor, got {type(got).__name__}. {hint}")
    expected = torch.as_tensor(expected, dtype=got.dtype)
    check(got.shape == expected.shape,
          f"{name}: expected shape {tuple(expected.shape)}, got {tuple(got.shape)}. {hint}")
    check(torch.allclose(got.detach().cpu(), expected, atol=atol, rtol=rtol),
          f"{name}: expected\n{expected}\ngot\n{got.detach()}\n{hint}")
    print(f"✓ {name}")


def check_own_code(name, function, *args, forbidden=()):
    """Fail if ``function(*args)`` runs any of the ``forbidden`` kdlib functions: write it yourself.

    The grader's policy: where an exercise is to implement a kdlib function, calling kdlib's
    version (under any name or alias) earns no points. A profiler hook sees every Python call.
    """
    forbidden_code = {f.__code__: f"{f.__module__}.{f.__name__}" for f in forbidden}
    called = set()

    def profile(frame, event, arg):
        if event == "call" and frame.f_code in forbidden_code:
            called.add(forbidden_code[frame.f_code])

    previous = sys.getprofile()
    sys.setprofile(profile)
    try:
        function(*args)
    finally:
        sys.setprofile(previous)
    check(not called, f"{name} calls {', '.join(sorted(called))}: this exercise asks you to implement it "
                      "yourself, so calling kdlib's version earns no points.")
    print(f"✓ {name} is your own code")
