// StopSignal: a sig_atomic_t flag and async-signal-safe handlers.
#include "launch/stop_signal.h"

#include <signal.h>
#include <unistd.h>

namespace dpt {
namespace {

volatile sig_atomic_t g_received = 0;
struct sigaction g_previous_term, g_previous_int;

void on_signal(int signal) {
  if (g_received != 0) _exit(128 + signal);  // the second signal: stop now
  g_received = signal;
}

}  // namespace

StopSignal::StopSignal() {
  g_received = 0;
  struct sigaction action = {};
  action.sa_handler = on_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  sigaction(SIGTERM, &action, &g_previous_term);
  sigaction(SIGINT, &action, &g_previous_int);
}

StopSignal::~StopSignal() {
  sigaction(SIGTERM, &g_previous_term, nullptr);
  sigaction(SIGINT, &g_previous_int, nullptr);
}

int StopSignal::received() const { return g_received; }

}  // namespace dpt
