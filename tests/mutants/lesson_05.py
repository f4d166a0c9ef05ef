"""Plausible wrong answers in lesson 05_teacher_assistants (see tests/mutants/__init__.py)."""

MUTANTS = [
    ("05_teacher_assistants", "distill_chain", "every model distilled from the original teacher", '''
def distill_chain(models, data, temperature=4.0, alpha=0.9, epochs=30, lr=3e-3, batch_size=128, seed=0):
    for model in models[1:]:
        training.distill(model, models[0], data, temperature=temperature, alpha=alpha, epochs=epochs,
                         lr=lr, batch_size=batch_size, seed=seed, progress=False)
    return list(models)
'''),
    ("05_teacher_assistants", "distill_chain", "links in reverse order (the student learns from an untrained assistant)", '''
def distill_chain(models, data, temperature=4.0, alpha=0.9, epochs=30, lr=3e-3, batch_size=128, seed=0):
    for i in reversed(range(1, len(models))):
        training.distill(models[i], models[i - 1], data, temperature=temperature, alpha=alpha, epochs=epochs,
                         lr=lr, batch_size=batch_size, seed=seed, progress=False)
    return list(models)
'''),
    ("05_teacher_assistants", "distill_chain", "trains the (already trained) teacher again first", '''
def distill_chain(models, data, temperature=4.0, alpha=0.9, epochs=30, lr=3e-3, batch_size=128, seed=0):
    training.train(models[0], data, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed, progress=False)
    for i in range(1, len(models)):
        training.distill(models[i], models[i - 1], data, temperature=temperature, alpha=alpha, epochs=epochs,
                         lr=lr, batch_size=batch_size, seed=seed, progress=False)
    return list(models)
'''),
    ("05_teacher_assistants", "distill_chain", "off by one: the last model is never distilled", '''
def distill_chain(models, data, temperature=4.0, alpha=0.9, epochs=30, lr=3e-3, batch_size=128, seed=0):
    for i in range(1, len(models) - 1):
        training.distill(models[i], models[i - 1], data, temperature=temperature, alpha=alpha, epochs=epochs,
                         lr=lr, batch_size=batch_size, seed=seed, progress=False)
    return list(models)
'''),
    ("05_teacher_assistants", "distill_chain", "the settings are not passed on (distill's defaults are used)", '''
def distill_chain(models, data, temperature=4.0, alpha=0.9, epochs=30, lr=3e-3, batch_size=128, seed=0):
    for i in range(1, len(models)):
        training.distill(models[i], models[i - 1], data, progress=False)
    return list(models)
'''),
    ("05_teacher_assistants", "distill_chain", "a different seed for every link", '''
def distill_chain(models, data, temperature=4.0, alpha=0.9, epochs=30, lr=3e-3, batch_size=128, seed=0):
    for i in range(1, len(models)):
        training.distill(models[i], models[i - 1], data, temperature=temperature, alpha=alpha, epochs=epochs,
                         lr=lr, batch_size=batch_size, seed=seed + i, progress=False)
    return list(models)
'''),
    ("05_teacher_assistants", "distill_chain", "returns only the student", '''
def distill_chain(models, data, temperature=4.0, alpha=0.9, epochs=30, lr=3e-3, batch_size=128, seed=0):
    for i in range(1, len(models)):
        training.distill(models[i], models[i - 1], data, temperature=temperature, alpha=alpha, epochs=epochs,
                         lr=lr, batch_size=batch_size, seed=seed, progress=False)
    return models[-1]
'''),
    ("05_teacher_assistants", "distill_chain", "calls kdlib's distill_chain", '''
def distill_chain(models, data, temperature=4.0, alpha=0.9, epochs=30, lr=3e-3, batch_size=128, seed=0):
    return assistants.distill_chain(models, data, temperature=temperature, alpha=alpha, epochs=epochs, lr=lr,
                                    batch_size=batch_size, seed=seed, progress=False)
'''),
]
