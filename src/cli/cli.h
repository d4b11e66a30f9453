/*
 * Subcommands of the switchboard binary, one file each; main.c dispatches on argv[1].
 */
#ifndef SB_CLI_CLI_H
#define SB_CLI_CLI_H

/* switchboard gen [--out DIR] [-I DIR]... FILE.proto... (gen.c). argv holds the arguments
 * after "gen". Returns the process exit status: 0, 1 (a tool failed) or 2 (usage). */
int sb_cli_gen(int argc, char **argv);

#endif
