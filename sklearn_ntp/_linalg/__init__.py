"""Dense and sparse linear algebra kernels shared by the loss, the solvers and the geometry."""
