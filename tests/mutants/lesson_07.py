"""Plausible wrong answers in lesson 07_data_free (see tests/mutants/__init__.py)."""


def _step(backward="loss.backward(inputs=[inputs])", layers="layers[-1:]", zero_grad="optimizer.zero_grad()",
          forward="datafree.activations(teacher, inputs)", clamp="inputs.clamp_(0, 1)", result="loss.item()", extra=""):
    """The correct step with one line swapped for a mistake."""
    return f'''
def reconstruction_step(teacher, inputs, targets, kind, optimizer):
    {zero_grad}
    layers = {forward}
    if kind == "top_layer":
        layers = {layers}
    loss = datafree.matching_loss(layers, targets)
    {backward}
    optimizer.step(){extra}
    with torch.no_grad():
        {clamp}
    return {result}
'''


MUTANTS = [
    ("07_data_free", "reconstruction_step", "plain loss.backward(): the teacher's parameters receive gradients",
     _step(backward="loss.backward()")),
    ("07_data_free", "reconstruction_step", "steps the teacher's weights too (own optimiser over teacher and inputs)",
     _step(backward="own = torch.optim.Adam([*teacher.parameters()], lr=0.05)\n    own.zero_grad()\n"
                    "    loss.backward()\n    own.step()")),
    ("07_data_free", "reconstruction_step", "freezes the teacher for good (requires_grad_(False), never restored)",
     _step(zero_grad="optimizer.zero_grad()\n    teacher.requires_grad_(False)", backward="loss.backward()")),
    ("07_data_free", "reconstruction_step", "no zero_grad: gradients accumulate across steps",
     _step(zero_grad="pass")),
    ("07_data_free", "reconstruction_step", "forward on detached inputs: no gradient reaches the pixels",
     _step(forward="datafree.activations(teacher, inputs.detach())",
           backward="if loss.requires_grad:\n        loss.backward(inputs=[inputs])")),
    ("07_data_free", "reconstruction_step", "ignores kind: top_layer targets matched against the first hidden layer",
     _step(layers="layers")),
    ("07_data_free", "reconstruction_step", "sign error: gradient ascent on the matching loss",
     _step(backward="(-loss).backward(inputs=[inputs])")),
    ("07_data_free", "reconstruction_step", "returns the loss after the step instead of before it",
     _step(result="datafree.matching_loss(datafree.activations(teacher, inputs)[-len(targets):], targets).item()")),
    ("07_data_free", "reconstruction_step", "no clamp: pixels leave [0, 1]", _step(clamp="pass")),
    ("07_data_free", "reconstruction_step", "returns the loss tensor (keeps the graph alive) instead of a float",
     _step(result="loss")),
    ("07_data_free", "reconstruction_step", "calls kdlib's reconstruction_step", '''
def reconstruction_step(teacher, inputs, targets, kind, optimizer):
    teacher.requires_grad_(False)
    try:
        return datafree.reconstruction_step(teacher, inputs, targets, kind, optimizer)
    finally:
        teacher.requires_grad_(True)
'''),
]
