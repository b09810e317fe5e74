// The ceiling: a socketmap server in the same runtime that does nothing but frame requests and
// answer `OK x`. Prints "listening PORT" on stdout; stops on SIGTERM.
import net from 'node:net';
import { NetstringParser } from './lib/socketmap.mjs';

const REPLY = Buffer.from('4:OK x,', 'latin1');
const server = net.createServer({ noDelay: true }, (sock) => {
  const parser = new NetstringParser(() => { sock.write(REPLY); }, 100_000);
  sock.on('data', (chunk) => {
    try { parser.push(chunk); } catch { sock.destroy(); }
  });
  sock.on('error', () => {});
});
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`listening ${server.address().port}\n`);
});
process.once('SIGTERM', () => process.exit(0));
