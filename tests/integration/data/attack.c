#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

static const char *res(long r) { return r < 0 ? strerrorname_np(errno) : "ok"; }
static void *thr(void *a) { return a; }

static const char *run(const char *name, const char *arg) {
    if (!strcmp(name, "mount")) return res(mount("none", "/mnt", "tmpfs", 0, NULL));
    if (!strcmp(name, "unshare_user")) return res(unshare(CLONE_NEWUSER));
    if (!strcmp(name, "unshare_mnt")) return res(unshare(CLONE_NEWNS));
    if (!strcmp(name, "keyctl")) return res(syscall(SYS_keyctl, 0, -3, 1));
    if (!strcmp(name, "bpf")) {
        unsigned int attr[16] = {2 /*ARRAY*/, 4, 4, 1};
        return res(syscall(SYS_bpf, 0 /*MAP_CREATE*/, attr, sizeof attr));
    }
    if (!strcmp(name, "ptrace")) return res(ptrace(PTRACE_ATTACH, atoi(arg), 0, 0));
    if (!strcmp(name, "reboot")) return res(syscall(SYS_reboot, 0, 0, 0, 0));
    if (!strcmp(name, "init_module")) return res(syscall(SYS_init_module, NULL, 0, ""));
    if (!strcmp(name, "finit_module")) {
        int fd = open("/bin/busybox", O_RDONLY);
        return res(syscall(SYS_finit_module, fd, "", 0));
    }
    if (!strcmp(name, "sysrq")) {
        int fd = open("/proc/sysrq-trigger", O_WRONLY);
        if (fd < 0) return res(fd);
        return res(write(fd, "h", 1));
    }
    if (!strcmp(name, "kcore")) {
        char buf[64];
        int fd = open("/proc/kcore", O_RDONLY);
        if (fd < 0) return res(fd);
        long n = read(fd, buf, sizeof buf);
        return n == 0 ? "empty" : res(n);
    }
    if (!strcmp(name, "read")) {
        char buf[64];
        int fd = open(arg, O_RDONLY);
        if (fd < 0) return res(fd);
        long n = read(fd, buf, sizeof buf);
        return n == 0 ? "empty" : res(n);
    }
    if (!strcmp(name, "mknod_block")) return res(mknod("/tmp/sda", S_IFBLK | 0600, makedev(8, 0)));
    if (!strcmp(name, "open_block")) {
        if (mknod("/tmp/sdb", S_IFBLK | 0600, makedev(8, 0)) && errno != EEXIST) return res(-1);
        return res(open("/tmp/sdb", O_RDONLY));
    }
    if (!strcmp(name, "euid")) { static char b[32]; snprintf(b, sizeof b, "%d", geteuid()); return b; }
    if (!strcmp(name, "chown")) return res(chown(arg, 0, 0));
    if (!strcmp(name, "write")) { int fd = open(arg, O_WRONLY | O_CREAT, 0644); return fd < 0 ? res(fd) : res(write(fd, "x", 1)); }
    if (!strcmp(name, "tcp")) {
        char c;
        int s = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t l = sizeof a;
        if (s < 0 || bind(s, (void *)&a, l) || listen(s, 1) || getsockname(s, (void *)&a, &l)) return "tcp-listen";
        int c2 = socket(AF_INET, SOCK_STREAM, 0);
        if (connect(c2, (void *)&a, l)) return "tcp-connect";
        int c3 = accept(s, NULL, NULL);
        if (c3 < 0 || write(c2, "z", 1) != 1 || read(c3, &c, 1) != 1) return "tcp-data";
        return "ok";
    }
    if (!strcmp(name, "normal")) {
        int sv[2]; char c;
        int fd = open("/tmp/normal", O_RDWR | O_CREAT | O_TRUNC, 0644);
        if (fd < 0 || write(fd, "x", 1) != 1 || pread(fd, &c, 1, 0) != 1 || unlink("/tmp/normal")) return "files";
        if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) || write(sv[0], "y", 1) != 1 || read(sv[1], &c, 1) != 1) return "socketpair";
        pid_t p = fork();
        if (p == 0) _exit(7);
        int st;
        if (p < 0 || waitpid(p, &st, 0) != p || WEXITSTATUS(st) != 7) return "fork";
        pthread_t t;
        if (pthread_create(&t, NULL, thr, NULL) || pthread_join(t, NULL)) return "threads";
        return "ok";
    }
    return "unknown-attack";
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        char *name = strdup(argv[i]), *arg = strchr(name, ':');
        if (arg) *arg++ = 0;
        errno = 0;
        printf("%s=%s\n", argv[i], run(name, arg));
        fflush(stdout);
    }
    return 0;
}
