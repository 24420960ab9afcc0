/** rlhf-ts: the public library surface. */
export * from './tensor/index.js';
export * from './nn/serialize.js';
export { lrAt, type ScheduleConfig, type ScheduleKind } from './nn/schedule.js';
export {
  parseSafetensors, readSafetensorsFile, readSafetensorsIndex, serializeSafetensors, writeSafetensorsFile,
  type RawTensor, type SafetensorsDtype,
} from './nn/safetensors.js';
