// The gRPC benchmark's C++ reference server: items.v1.ItemService's GetItem and WatchItems on
// Debian's gRPC C++ (libgrpc++-dev), with stubs generated from examples/items/items.proto by
// bench/grpc/run.sh (protoc + grpc_cpp_plugin). Not part of the CMake build.
//
//   items_server PORT NITEMS
//
// The store mirrors examples/items/main.c: items 1..NITEMS named "item-<id>", price <id>.5,
// behind one mutex. GetItem uses the callback API (what gRPC recommends for new C++ servers:
// no thread per call, completions on gRPC's own threads); WatchItems, a server stream, uses
// the synchronous API (gRPC serves both kinds on one service). Every other method answers
// UNIMPLEMENTED. Stops on SIGTERM/SIGINT with exit status 0.
#include <grpcpp/grpcpp.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "items.grpc.pb.h"

namespace {

using items::v1::GetItemRequest;
using items::v1::Item;
using items::v1::ItemEvent;
using items::v1::ItemService;
using items::v1::WatchItemsRequest;

// Items by id (index id - 1); guarded by mu, like the C example's store.
struct Store {
  std::mutex mu;
  std::vector<Item> items;
};

// GetItem on the callback API, WatchItems on the synchronous one.
class Service final : public ItemService::WithCallbackMethod_GetItem<ItemService::Service> {
 public:
  explicit Service(Store *store) : store_(store) {}

  grpc::ServerUnaryReactor *GetItem(grpc::CallbackServerContext *ctx, const GetItemRequest *req,
                                    Item *res) override {
    grpc::ServerUnaryReactor *reactor = ctx->DefaultReactor();
    {
      std::lock_guard<std::mutex> lock(store_->mu);
      if (req->id() >= 1 && req->id() <= store_->items.size()) {
        *res = store_->items[req->id() - 1];
        reactor->Finish(grpc::Status::OK);
        return reactor;
      }
    }
    reactor->Finish(grpc::Status(grpc::StatusCode::NOT_FOUND,
                                 "item " + std::to_string(req->id()) + " not found"));
    return reactor;
  }

  grpc::Status WatchItems(grpc::ServerContext *, const WatchItemsRequest *req,
                          grpc::ServerWriter<ItemEvent> *writer) override {
    std::vector<Item> snapshot;
    {
      std::lock_guard<std::mutex> lock(store_->mu);
      for (size_t i = req->since_id(); i < store_->items.size(); i++)
        snapshot.push_back(store_->items[i]);
    }
    ItemEvent ev;
    for (const Item &it : snapshot) {
      *ev.mutable_item() = it;
      if (!writer->Write(ev)) break;
    }
    return grpc::Status::OK;
  }

 private:
  Store *store_;
};

volatile std::sig_atomic_t stop_requested = 0;

void on_signal(int) { stop_requested = 1; }

}  // namespace

int main(int argc, char **argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s PORT NITEMS\n", argv[0]);
    return 2;
  }
  Store store;
  long n = std::strtol(argv[2], nullptr, 10);
  for (long id = 1; id <= n; id++) {
    Item it;
    it.set_id(static_cast<uint32_t>(id));
    it.set_name("item-" + std::to_string(id));
    it.set_price(static_cast<double>(id) + 0.5);
    store.items.push_back(it);
  }
  Service service(&store);
  grpc::ServerBuilder builder;
  builder.AddListeningPort(std::string("127.0.0.1:") + argv[1], grpc::InsecureServerCredentials());
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server) {
    std::fprintf(stderr, "items_server: could not listen on port %s\n", argv[1]);
    return 1;
  }
  std::signal(SIGTERM, on_signal);
  std::signal(SIGINT, on_signal);
  // The signal handler only sets a flag: Shutdown() is not async-signal-safe.
  while (!stop_requested) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  server->Shutdown();
  return 0;
}
