/* Leak checking inside a unit test (shared by the unit tests that allocate through the library).
 * Criterion ignores LeakSanitizer reports from its worker processes, so under ASan a test checks
 * for leaks itself as its last statement with NO_LEAKS() (an assertion in a fini hook is not
 * counted); without ASan it does nothing. */
#ifndef ROSETTA_TEST_LEAKS_H
#define ROSETTA_TEST_LEAKS_H

#include <criterion/criterion.h>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#define NO_LEAKS() cr_assert_eq(__lsan_do_recoverable_leak_check(), 0, "memory leaked (see above)")
#else
#define NO_LEAKS() ((void)0)
#endif

#endif
