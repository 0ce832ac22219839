// Prints its arguments and exits with the number of arguments plus 3, so a
// test can tell arguments and exit codes came through.
#include <stdio.h>
int main(int argc, char** argv) {
  printf("hello from a sealed program: %d argument(s)\n", argc - 1);
  for (int i = 1; i < argc; ++i) printf("arg %d: %s\n", i, argv[i]);
  return argc + 2;
}
