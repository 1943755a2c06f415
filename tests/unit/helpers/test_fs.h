/* File-system helpers shared by the unit tests (compiled into every unit test executable). */
#ifndef ROSETTA_TEST_FS_H
#define ROSETTA_TEST_FS_H

/* Removes dir and everything below it; silently ignores what does not exist. */
void test_remove_tree(const char *dir);

#endif
