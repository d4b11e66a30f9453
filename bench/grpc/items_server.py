"""The gRPC benchmark's Python reference server: items.v1.ItemService's GetItem and WatchItems
on Debian's grpcio (grpc.aio: one asyncio loop, no thread per call), with stubs that
bench/grpc/run.sh generates from examples/items/items.proto into a directory on PYTHONPATH.

    items_server.py PORT NITEMS

The store mirrors examples/items/main.c: items 1..NITEMS named "item-<id>", price <id>.5.
Every other method answers UNIMPLEMENTED. Stops on SIGTERM/SIGINT with exit status 0.
"""

import asyncio
import signal
import sys

import grpc
import items_pb2
import items_pb2_grpc


class ItemService(items_pb2_grpc.ItemServiceServicer):
    def __init__(self, n):
        self.items = [items_pb2.Item(id=i, name=f"item-{i}", price=i + 0.5)
                      for i in range(1, n + 1)]

    async def GetItem(self, request, context):
        if 1 <= request.id <= len(self.items):
            return self.items[request.id - 1]
        await context.abort(grpc.StatusCode.NOT_FOUND, f"item {request.id} not found")

    async def WatchItems(self, request, context):
        for it in self.items[request.since_id:]:
            yield items_pb2.ItemEvent(item=it)


async def main(port, n):
    server = grpc.aio.server()
    items_pb2_grpc.add_ItemServiceServicer_to_server(ItemService(n), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop(1)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: items_server.py PORT NITEMS")
    asyncio.run(main(int(sys.argv[1]), int(sys.argv[2])))
