/* The test kernels' /init: a static, freestanding program (no libc) that shows it runs,
 * mounts sysfs, reports whether Linux's fw_cfg driver found the etc/vmcoreinfo file (the
 * driver writes the VMCOREINFO note's address there when it registers the file) and
 * restarts the machine, so that `-no-reboot` ends the run. Built by tools/linux/build.py. */

typedef unsigned long word;

#if defined(__x86_64__)
enum { SYS_write = 1, SYS_openat = 257, SYS_close = 3, SYS_mount = 165, SYS_reboot = 169 };
static word sys(word n, word a, word b, word c, word d, word e)
{
	register word r10 __asm__("r10") = d;
	register word r8 __asm__("r8") = e;
	word ret;
	__asm__ volatile("syscall" : "=a"(ret) : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8)
			 : "rcx", "r11", "memory");
	return ret;
}
#elif defined(__aarch64__)
enum { SYS_write = 64, SYS_openat = 56, SYS_close = 57, SYS_mount = 40, SYS_reboot = 142 };
static word sys(word n, word a, word b, word c, word d, word e)
{
	register word x8 __asm__("x8") = n;
	register word x0 __asm__("x0") = a;
	register word x1 __asm__("x1") = b;
	register word x2 __asm__("x2") = c;
	register word x3 __asm__("x3") = d;
	register word x4 __asm__("x4") = e;
	__asm__ volatile("svc #0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4) : "memory");
	return x0;
}
#else
#error "x86_64 or aarch64 only"
#endif

#define AT_FDCWD ((word)-100)

static word len(const char *s)
{
	word n = 0;
	while (s[n])
		n++;
	return n;
}

static void say(const char *s)
{
	sys(SYS_write, 1, (word)s, len(s), 0, 0);
}

static int exists(const char *path)
{
	long fd = (long)sys(SYS_openat, AT_FDCWD, (word)path, 0, 0, 0);
	if (fd < 0)
		return 0;
	sys(SYS_close, (word)fd, 0, 0, 0, 0);
	return 1;
}

void _start(void)
{
	say("emu-linux init: running\n");
	if ((long)sys(SYS_mount, (word)"sysfs", (word)"/sys", (word)"sysfs", 0, 0) < 0)
		say("emu-linux init: mounting sysfs failed\n");
	else if (exists("/sys/firmware/qemu_fw_cfg/by_name/etc/vmcoreinfo/raw"))
		say("emu-linux init: fw_cfg etc/vmcoreinfo present\n");
	else if (exists("/sys/firmware/qemu_fw_cfg/rev"))
		say("emu-linux init: fw_cfg present, no etc/vmcoreinfo\n");
	else
		say("emu-linux init: no fw_cfg device\n");
	say("emu-linux init: restarting\n");
	/* reboot(LINUX_REBOOT_MAGIC1, LINUX_REBOOT_MAGIC2, LINUX_REBOOT_CMD_RESTART) */
	sys(SYS_reboot, 0xfee1dead, 672274793, 0x01234567, 0, 0);
	for (;;)
		;
}
