// The lab: the reward model's known failures as experiments (issue 6 first: over-optimisation), and the
// report they write. Gold reward, synthetic annotators, Gao et al.'s fits, plots, the HTML report.
export {
  distinctN, GOLD_FORMULA, GOLD_REPEAT_N, goldParts, goldReward, repeatRate, vaderCompound, words, type GoldParts,
} from './gold.js';
export {
  annotatePairs, preferenceProbability, toJsonl, type AnnotatedPair, type AnnotateOptions, type Annotator, type Comparison,
} from './annotators.js';
export { fitOveroptimisation, fitPeak, fitValue, klBestOfN, type Fit, type FitForm } from './fit.js';
export {
  fitCurve, lineChartSpec, overoptimisationChart, renderChart, renderSvg,
  type Figure, type LineChart, type Marker, type OveroptimisationPlot, type Point, type Series,
} from './plots.js';
export {
  buildReport, escapeHtml, formatCell, writeReport, type Cell, type Report, type ReportMeta, type Sample, type Section, type Table,
} from './report.js';
