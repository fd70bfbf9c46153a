// Placeholder until the optimizers land.
#include "optim/lr_schedule.h"
