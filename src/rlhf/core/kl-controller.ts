/** KL-penalty coefficients: fixed, or adaptive towards a target KL (Ziegler et al. 2019, §2.2). */
export interface KlController {
  readonly value: number;
  /** Called once per RL step with the measured KL (nats per sequence) and the samples it covered. */
  update(currentKl: number, nSteps: number): void;
}

/** A constant KL coefficient β. */
export class FixedKlController implements KlController {
  constructor(readonly value: number) {}
  update(): void {}
}

/**
 * β ← β · (1 + clip(KL / target − 1, −0.2, 0.2) · n / horizon): raises β when the policy drifts past the
 * target KL and lowers it when it stays below (OpenRLHF's AdaptiveKLController, TRL's likewise).
 */
export class AdaptiveKlController implements KlController {
  value: number;
  constructor(initial: number, readonly target: number, readonly horizon: number) {
    if (!(target > 0 && horizon > 0)) throw new Error(`adaptive KL needs target > 0 and horizon > 0, got ${target}, ${horizon}`);
    this.value = initial;
  }
  update(currentKl: number, nSteps: number): void {
    const error = Math.min(0.2, Math.max(-0.2, currentKl / this.target - 1));
    this.value *= 1 + (error * nSteps) / this.horizon;
  }
}
