"""Plausible wrong answers in lesson 08_dataset_distillation (see tests/mutants/__init__.py)."""

LESSON = "08_dataset_distillation"

MUTANTS = [
    (LESSON, "inner_step", "no create_graph: the gradient is a constant, pixels get no gradient", '''
def inner_step(params, synthetic_x, synthetic_y, lr, model):
    loss = F.cross_entropy(functional_call(model, params, (synthetic_x,)), synthetic_y)
    grads = torch.autograd.grad(loss, list(params.values()))
    return {name: p - lr * g for (name, p), g in zip(params.items(), grads)}
'''),
    (LESSON, "inner_step", "detaches the synthetic images", '''
def inner_step(params, synthetic_x, synthetic_y, lr, model):
    loss = F.cross_entropy(functional_call(model, params, (synthetic_x.detach(),)), synthetic_y)
    grads = torch.autograd.grad(loss, list(params.values()), create_graph=True)
    return {name: p - lr * g for (name, p), g in zip(params.items(), grads)}
'''),
    (LESSON, "inner_step", "gradient ascent: plus instead of minus", '''
def inner_step(params, synthetic_x, synthetic_y, lr, model):
    loss = F.cross_entropy(functional_call(model, params, (synthetic_x,)), synthetic_y)
    grads = torch.autograd.grad(loss, list(params.values()), create_graph=True)
    return {name: p + lr * g for (name, p), g in zip(params.items(), grads)}
'''),
    (LESSON, "inner_step", "learning rate not applied", '''
def inner_step(params, synthetic_x, synthetic_y, lr, model):
    loss = F.cross_entropy(functional_call(model, params, (synthetic_x,)), synthetic_y)
    grads = torch.autograd.grad(loss, list(params.values()), create_graph=True)
    return {name: p - g for (name, p), g in zip(params.items(), grads)}
'''),
    (LESSON, "inner_step", "learning rate applied twice (loss already scaled by lr)", '''
def inner_step(params, synthetic_x, synthetic_y, lr, model):
    loss = lr * F.cross_entropy(functional_call(model, params, (synthetic_x,)), synthetic_y)
    grads = torch.autograd.grad(loss, list(params.values()), create_graph=True)
    return {name: p - lr * g for (name, p), g in zip(params.items(), grads)}
'''),
    (LESSON, "inner_step", "in-place update under no_grad, like an optimizer step", '''
def inner_step(params, synthetic_x, synthetic_y, lr, model):
    loss = F.cross_entropy(functional_call(model, params, (synthetic_x,)), synthetic_y)
    grads = torch.autograd.grad(loss, list(params.values()), create_graph=True)
    with torch.no_grad():
        for p, g in zip(params.values(), grads):
            p -= lr * g
    return params
'''),
    (LESSON, "inner_step", "summed loss (reduction='sum') instead of the mean over synthetic images", '''
def inner_step(params, synthetic_x, synthetic_y, lr, model):
    loss = F.cross_entropy(functional_call(model, params, (synthetic_x,)), synthetic_y, reduction="sum")
    grads = torch.autograd.grad(loss, list(params.values()), create_graph=True)
    return {name: p - lr * g for (name, p), g in zip(params.items(), grads)}
'''),
    (LESSON, "inner_step", "model(x) uses the model's own weights, not params", '''
def inner_step(params, synthetic_x, synthetic_y, lr, model):
    loss = F.cross_entropy(model(synthetic_x), synthetic_y)
    grads = torch.autograd.grad(loss, list(model.parameters()), create_graph=True)
    return {name: p - lr * g for (name, p), g in zip(params.items(), grads)}
'''),
    (LESSON, "inner_step", "detaches the new weights (a plain SGD step)", '''
def inner_step(params, synthetic_x, synthetic_y, lr, model):
    loss = F.cross_entropy(functional_call(model, params, (synthetic_x,)), synthetic_y)
    grads = torch.autograd.grad(loss, list(params.values()), create_graph=True)
    return {name: (p - lr * g).detach().requires_grad_(True) for (name, p), g in zip(params.items(), grads)}
'''),
    (LESSON, "inner_step", "calls kdlib's inner_step", '''
def inner_step(params, synthetic_x, synthetic_y, lr, model):
    return dataset_distillation.inner_step(params, synthetic_x, synthetic_y, lr, model)
'''),
]
