export const RANKS: Record<string, number>;
export function checkLayers(srcDir: string): { files: number; problems: string[] };
