/** rlhf-ts tensors: libtorch's tensors, autograd and optimisers from TypeScript. */
export { type Device, type DType, DTYPES, isFloating } from './dtype.js';
export { dispose, keep, memory, peakDuring, resetPeakMemory, scope } from './lifetime.js';
export { type NestedArray, type Dims, Tensor, type TensorOrScalar, type ValuesIndices } from './tensor.js';
export * from './create.js';
export * from './functional.js';
export * from './optim.js';
export { type BoundaryProfile, profileBoundary } from './profile.js';

// Warn once, at load, when libtorch runs on the slow reference BLAS (~15× slower matmuls than OpenBLAS).
import { checkBlas } from './functional.js';
checkBlas();
