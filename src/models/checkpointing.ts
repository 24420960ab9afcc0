/**
 * Gradient checkpointing of transformer blocks (Chen et al. 2016, "Training Deep Nets with Sublinear Memory
 * Cost"), in two passes, since libtorch's C++ API has no torch.utils.checkpoint: the forward runs without a
 * graph and keeps only each block's input (B, T, C); the loss is taken from the last hidden state with a
 * graph and backpropagated to it; then, from the last block to the first, each block runs again with a
 * graph from its saved input and is backpropagated with the gradient its output received, which gives the
 * gradient of its input; the embeddings take the last one. The parameters' gradients equal those of one
 * ordinary backward (the same operations on the same values). Memory: L block inputs plus one block's graph,
 * instead of every block's graph; time: one extra forward of the blocks.
 *
 * A block must compute the same thing twice: nothing random inside it (LoRA dropout > 0 is refused by the
 * caller that knows of adapters).
 */
import { noGrad, scope, type Tensor } from '../tensor/index.js';
import type { CausalLM, ForwardOptions } from './common.js';

/**
 * Runs forward and backward of `loss(hidden states)` with the blocks checkpointed: the parameters'
 * gradients accumulate into .grad as loss(model.hidden(ids, opts)).backward() would. Returns the loss.
 */
export function checkpointedBackward(model: CausalLM, ids: Tensor, opts: ForwardOptions, loss: (hidden: Tensor) => Tensor): number {
  return scope(() => {
    const s = model.stages(ids, opts);
    // Pass 1, no graph: every block's input.
    const inputs: Tensor[] = [];
    let x = noGrad(() => s.embed());
    for (const block of s.blocks) {
      inputs.push(x);
      x = scope(() => noGrad(() => block(x)));
    }
    // The loss from the last block's output, with a graph from there on.
    const [topGrad, value] = scope(() => {
      const top = x.detach().requiresGrad_(true);
      const l = loss(s.finish(top));
      l.backward();
      return [top.grad!.clone(), l.item()] as const;
    });
    let g = topGrad;
    // Pass 2, from the last block: recompute with a graph, backpropagate its output's gradient.
    for (let i = s.blocks.length - 1; i >= 0; i--) {
      const input = inputs[i]!;
      const next = scope(() => {
        const xi = input.detach().requiresGrad_(true);
        s.blocks[i]!(xi).backward(g);
        return xi.grad!.clone();
      });
      input.dispose();
      g.dispose();
      g = next;
    }
    scope(() => {
      const e = s.embed();
      if (e.requiresGrad) e.backward(g); // a frozen embedding (LoRA) takes no gradient
    });
    return value;
  });
}
