"""Readable feedback for the notebooks' test cells: say what was expected, what came, and a hint."""
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
