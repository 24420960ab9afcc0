/** The RL math the policy trainers share (no trainer yet: issue 5). */
export * from './advantages.js';
export * from './losses.js';
export * from './kl-controller.js';
export * from './preference.js';
