"""Borrowed views: the kernels' arrays without reference counting inside their hot loops.

Numba counts references to every array it passes around. Inlining a helper copies its array
arguments, and each copy is an atomic increment and decrement of the array's count. Numba's
pruning pass removes such pairs only in simple control flow; once the inlined helper has a loop
or a call (as ``health.propagate`` does for segments beyond its table), every iteration of the
caller's loop pays them. That was more than half of the evaluator's time: ``dead_after`` over
the London example's 90 casualties took 2.3 µs with the counts and 0.66 µs without.

``borrow(x)`` returns the same array (or tuple of arrays) with no owner: the data, shape and
strides of ``x``, a null ``meminfo`` and a null ``parent``. A count on a null owner is a test
and a return instead of an atomic operation. The rules that keep it safe:

- Only a kernel's arguments are borrowed, on entry: the caller holds their owners until the
  kernel returns. An array the kernel allocates itself is not (Numba frees it after its last
  use, which may come before the view's); it is passed to a kernel that borrows it.
- Never in an ``inline="always"`` helper: inlined, its arguments are the caller's variables,
  which may be temporaries released as soon as they are passed.
- A borrowed view, or a slice of one, is never returned or stored where it outlives the call.
"""

from __future__ import annotations

from numba import njit

try:  # Numba's array model: internal API, so without it borrowing falls back to the array itself
    from numba.core import cgutils, types
    from numba.extending import intrinsic
    from numba.np.arrayobj import make_array
except ImportError:  # pragma: no cover
    make_array = None


if make_array is None:  # pragma: no cover

    @njit(inline="always")
    def borrow(x):
        return x

else:

    def _view(context, builder, aryty, value):
        src = make_array(aryty)(context, builder, value=value)
        out = make_array(aryty)(context, builder)
        out.data = src.data
        out.shape = src.shape
        out.strides = src.strides
        out.itemsize = src.itemsize
        out.nitems = src.nitems
        out.meminfo = cgutils.get_null_value(out.meminfo.type)
        out.parent = cgutils.get_null_value(out.parent.type)
        return out._getvalue()

    def _borrowable(t):
        if isinstance(t, types.BaseTuple):
            return all(_borrowable(m) for m in t.types)
        return isinstance(t, (types.Array, types.Number, types.Boolean))

    def _borrowed(context, builder, t, value):
        if isinstance(t, types.Array):
            return _view(context, builder, t, value)
        if isinstance(t, types.BaseTuple):
            out = context.get_constant_undef(t)
            for i, m in enumerate(t.types):
                out = builder.insert_value(out, _borrowed(context, builder, m, builder.extract_value(value, i)), i)
            return out
        return value  # a number passes as it is

    @intrinsic
    def borrow(typingctx, x):
        """An array, or a (named, nested) tuple of arrays and numbers, with every array a view
        without an owner (see the module)."""
        if not _borrowable(x):
            return None

        def codegen(context, builder, sig, args):
            return _borrowed(context, builder, x, args[0])

        return x(x), codegen
