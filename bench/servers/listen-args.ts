// `--host H --port P` for the baseline servers (defaults 127.0.0.1 and 0: a free port).

export function listenArgs(argv: readonly string[]): { host: string; port: number } {
  let host = '127.0.0.1';
  let port = 0;
  for (let index = 0; index < argv.length; index += 2) {
    const [name, value] = [argv[index], argv[index + 1]];
    if (name === '--host' && value) host = value;
    else if (name === '--port' && value && /^\d+$/.test(value)) port = Number(value);
    else throw new Error(`unknown argument ${name ?? ''}; use --host H --port P`);
  }
  return { host, port };
}
