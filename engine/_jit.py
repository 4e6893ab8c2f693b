"""JIT options for every kernel, set in one place.

``cache=True`` keeps start-up fast once the cache is warm; ``nogil=True`` lets the batch wrappers run
kernels on several threads at once. No ``fastmath``: the numpy twins must agree bit for bit on the
deterministic kernels.
"""

JIT = {"cache": True, "nogil": True}
