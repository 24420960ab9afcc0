// Feedback data: raw formats, streaming loaders, train/test splits, filters, SST-2 as preferences.
export type {
  BinaryRecord, ChatTemplateFn, FeedbackFormat, FeedbackRecord, PairRecord, RankingRecord, RatingRecord, RawBinary,
  RawFormats, RawHhRlhf, RawMeta, RawPairwise, RawRanking, RawRating, RawSummarizeComparison, RecordMeta, TextOrMessages,
} from './types.js';
export { responsesOf } from './types.js';
export { PARSERS, parseRecord, RecordError, type ParseContext, type RecordParser } from './formats.js';
export {
  FeedbackError, loadFeedback, MAX_INVALID_EXAMPLES, readLines, streamFeedback,
  type InvalidRecord, type LoadOptions, type LoadReport, type StreamOptions,
} from './load.js';
export { hashUniform, recordKey, split, splitPart, type SplitKey, type SplitOptions, type SplitPart } from './split.js';
export { filterFeedback, type FilterOptions, type FilterResult } from './filter.js';
export { sst2Pairs, type Sst2Options } from './sst2.js';
