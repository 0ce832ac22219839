// Prints the file named by its first argument: the kind of licensed program
// (a converter, a viewer) a host could aim at the processor's own files.
#include <stdio.h>
int main(int argc, char** argv) {
  if (argc < 2) return 2;
  FILE* f = fopen(argv[1], "rb");
  if (!f) {
    perror(argv[1]);
    return 1;
  }
  int c;
  while ((c = fgetc(f)) != EOF) putchar(c);
  fclose(f);
  return 0;
}
