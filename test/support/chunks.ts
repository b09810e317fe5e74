/** Splits `input` at the given cut points (any order) into consecutive chunks, as a socket might deliver it. */
export function splitAt(input: Buffer, cuts: number[]): Buffer[] {
  const points = [0, ...cuts.slice().sort((x, y) => x - y), input.length];
  const chunks: Buffer[] = [];
  for (let i = 1; i < points.length; i++) chunks.push(input.subarray(points[i - 1], points[i]));
  return chunks;
}
