/* The test kernels' /init (static, musl; built by tools/linux/build.py with zig's C
 * compiler). It shows what Linux and its fw_cfg driver see, then crashes the kernel the way
 * a user provokes a dump: through /proc/sysrq-trigger.
 *
 *   emu-linux init: uname: SYSNAME RELEASE VERSION MACHINE
 *   emu-linux init: fw_cfg opt/emu/test: CONTENTS        (-fw_cfg name=opt/emu/test,...)
 *   emu-linux init: fw_cfg etc/vmcoreinfo size: N         (-device vmcoreinfo)
 *   emu-linux init: crashing the kernel through /proc/sysrq-trigger
 *
 * A missing item prints "absent". Words on the kernel command line that the kernel passes
 * to init as arguments change what follows: "echo" reads a line typed on the console and
 * prints it back ("emu-linux init: type a line" / "emu-linux init: read: LINE"), "restart"
 * restarts the machine instead of crashing it, so that -no-reboot ends the run. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/utsname.h>
#include <unistd.h>

#define FW_CFG "/sys/firmware/qemu_fw_cfg/by_name/"

/* The whole file at path (NUL-terminated, a final newline dropped), or NULL. */
static const char *slurp(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return NULL;
	ssize_t n = read(fd, buf, size - 1);
	close(fd);
	if (n < 0)
		return NULL;
	buf[n] = '\0';
	if (n > 0 && buf[n - 1] == '\n')
		buf[n - 1] = '\0';
	return buf;
}

static void report(const char *what, const char *path)
{
	char buf[256];
	const char *value = slurp(path, buf, sizeof(buf));
	printf("emu-linux init: %s: %s\n", what, value ? value : "absent");
}

int main(int argc, char **argv)
{
	struct utsname u;
	int restart = 0, echo = 0;

	setvbuf(stdout, NULL, _IONBF, 0);
	for (int i = 1; i < argc; i++) {
		restart |= strcmp(argv[i], "restart") == 0;
		echo |= strcmp(argv[i], "echo") == 0;
	}
	if (uname(&u) == 0)
		printf("emu-linux init: uname: %s %s %s %s\n", u.sysname, u.release, u.version,
		       u.machine);
	if (mount("sysfs", "/sys", "sysfs", 0, NULL) != 0)
		printf("emu-linux init: mounting sysfs failed\n");
	if (mount("proc", "/proc", "proc", 0, NULL) != 0)
		printf("emu-linux init: mounting proc failed\n");
	report("fw_cfg opt/emu/test", FW_CFG "opt/emu/test/raw");
	report("fw_cfg etc/vmcoreinfo size", FW_CFG "etc/vmcoreinfo/size");
	if (echo) {
		char line[256];
		printf("emu-linux init: type a line\n");
		if (fgets(line, sizeof(line), stdin) != NULL) {
			line[strcspn(line, "\r\n")] = '\0';
			printf("emu-linux init: read: %s\n", line);
		}
	}
	if (restart) {
		printf("emu-linux init: restarting\n");
		reboot(RB_AUTOBOOT);
	} else {
		printf("emu-linux init: crashing the kernel through /proc/sysrq-trigger\n");
		int fd = open("/proc/sysrq-trigger", O_WRONLY);
		if (fd >= 0)
			write(fd, "c", 1);
		printf("emu-linux init: the kernel did not crash\n");
	}
	for (;;)
		pause();
}
