/* The JSON reader and writer moved to core/json.h (the broker, below contract/, needs them).
 * This forwarding header keeps work in flight building; it goes once nothing includes it. */
#include "core/json.h"
