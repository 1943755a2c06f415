/* apr: the git-style dispatcher. `apr <name> args...` runs `apr-<name>` from the directory
 * that holds this program; `apr --help` lists the tools found there with one line each. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"

static const cli_tool TOOL = {
    "dispatcher", "run Rosetta tools: apr <tool> [args...]",
    "usage: apr <tool> [args...]\n"
    "       apr --help | --version\n\n"
    "Runs apr-<tool> from the directory of this program (git style). Every tool has its own\n"
    "--help. Unknown tools exit with code 2 and a suggestion.\n"};

/* Directory of the running executable, from /proc/self/exe. */
static int self_dir(char *out, size_t size)
{
    ssize_t n = readlink("/proc/self/exe", out, size - 1);
    if (n <= 0)
        return -1;
    out[n] = '\0';
    char *slash = strrchr(out, '/');
    if (!slash)
        return -1;
    *slash = '\0';
    return 0;
}

static int is_tool(const char *dir, const char *entry)
{
    if (strncmp(entry, "apr-", 4) != 0 || entry[4] == '\0' || strchr(entry, '.'))
        return 0;
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s/%s", dir, entry) >= (int)sizeof path)
        return 0;
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted list of tool names (without "apr-") in dir; caller frees. */
static char **list_tools(const char *dir, size_t *count)
{
    *count = 0;
    DIR *d = opendir(dir);
    if (!d)
        return NULL;
    char **names = NULL;
    size_t cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!is_tool(dir, e->d_name))
            continue;
        if (*count == cap) {
            cap = cap ? cap * 2 : 32;
            char **grown = realloc(names, cap * sizeof *names);
            if (!grown)
                break;
            names = grown;
        }
        names[(*count)++] = strdup(e->d_name + 4);
    }
    closedir(d);
    if (names)
        qsort(names, *count, sizeof *names, compare_names);
    return names;
}

/* First line printed by `apr-<name> --describe`. The tool runs from an argument list (as git
 * runs its commands), never through a shell, so no directory name can change the command. */
static void describe(const char *dir, const char *name, char *out, size_t size)
{
    out[0] = '\0';
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s/apr-%s", dir, name) >= (int)sizeof path)
        return;
    int fds[2];
    if (pipe(fds) != 0)
        return;
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return;
    }
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(fds[1], STDOUT_FILENO);
        if (null >= 0)
            dup2(null, STDERR_FILENO);
        close(fds[0]);
        close(fds[1]);
        char *const child_argv[] = {path, "--describe", NULL};
        execv(path, child_argv);
        _exit(127);
    }
    close(fds[1]);
    size_t used = 0;
    while (used + 1 < size) {
        ssize_t n = read(fds[0], out + used, size - 1 - used);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        used += (size_t)n;
    }
    out[used] = '\0';
    close(fds[0]);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
    }
    char *nl = strchr(out, '\n');
    if (nl)
        *nl = '\0';
}

static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 64 || lb > 64)
        return 99;
    size_t row[65];
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t prev = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t cur = row[j];
            size_t best = prev + (a[i - 1] != b[j - 1]);
            if (row[j] + 1 < best)
                best = row[j] + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            prev = cur;
        }
    }
    return row[lb];
}

static void free_list(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

static int print_help(const char *dir)
{
    printf("usage: apr <tool> [args...]\n\nRosetta: convert, inspect and verify LLM model files "
           "(SafeTensors, GGUF, APR v2).\n\nTools:\n");
    size_t n;
    char **names = list_tools(dir, &n);
    for (size_t i = 0; i < n; i++) {
        char line[256];
        describe(dir, names[i], line, sizeof line);
        printf("  %-18s %s\n", names[i], line);
    }
    free_list(names, n);
    printf(
        "\nRun 'apr <tool> --help' for a tool's options. Exit codes: 0 ok, 1 check failed,\n"
        "2 usage error, 3 input unreadable or malformed, 4 write error, 5 contract violation.\n");
    return APR_EXIT_OK;
}

int main(int argc, char **argv)
{
    char dir[PATH_MAX];
    if (self_dir(dir, sizeof dir) != 0) {
        fprintf(stderr, "apr: cannot locate the directory of this program\n");
        return APR_EXIT_INPUT;
    }
    if (argc < 2) {
        print_help(dir);
        return APR_EXIT_USAGE;
    }
    const char *name = argv[1];
    bool help_for_tool = false; /* `apr help TOOL` is `apr TOOL --help` */
    if (strcmp(name, "-h") == 0 || strcmp(name, "--help") == 0 || strcmp(name, "help") == 0) {
        if (argc < 3 || strcmp(name, "help") != 0)
            return print_help(dir);
        name = argv[2];
        help_for_tool = true;
    } else if (strcmp(name, "--version") == 0) {
        cli_print_version(&TOOL, stdout);
        return APR_EXIT_OK;
    } else if (name[0] == '-') {
        fprintf(stderr, "apr: unknown option '%s'\nTry 'apr --help'.\n", name);
        return APR_EXIT_USAGE;
    }
    char path[PATH_MAX];
    if (strchr(name, '/') ||
        snprintf(path, sizeof path, "%s/apr-%s", dir, name) >= (int)sizeof path ||
        !is_tool(dir, path + strlen(dir) + 1)) {
        fprintf(stderr, "apr: '%s' is not an apr tool.", name);
        size_t n, best = 99;
        char **names = list_tools(dir, &n);
        const char *suggestion = NULL;
        for (size_t i = 0; i < n; i++) {
            size_t d = edit_distance(name, names[i]);
            if (d < best) {
                best = d;
                suggestion = names[i];
            }
        }
        if (suggestion && best <= 3)
            fprintf(stderr, " Did you mean 'apr %s'?", suggestion);
        fprintf(stderr, "\nRun 'apr --help' for the list of tools.\n");
        free_list(names, n);
        return APR_EXIT_USAGE;
    }
    if (help_for_tool) {
        char *help_argv[] = {path, "--help", NULL};
        execv(path, help_argv);
    } else {
        argv[1] = path;
        execv(path, argv + 1);
    }
    fprintf(stderr, "apr: cannot run %s: %s\n", path, strerror(errno));
    return APR_EXIT_INPUT;
}
