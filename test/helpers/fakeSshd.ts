/** A TCP listener on 127.0.0.1 that greets like sshd (or like something else), for reachability checks. */
import { AddressInfo, createServer, Server } from "net";

export async function listen(greeting: string): Promise<{ port: number; close: () => Promise<void> }> {
  const server: Server = createServer((socket) => {
    socket.on("error", () => undefined);
    socket.end(greeting);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
