// sandrun_clone3_vm: clone3() for a child that shares our memory and runs on its own stack.
//
//   long sandrun_clone3_vm(struct clone_args* args, size_t size, int (*fn)(void*), void* arg);
//
// With CLONE_VM the child resumes on the stack named in `args`, in the middle of whatever C++
// function made the call; compiled code there would use the parent's frame. So, as glibc does
// for clone(), the child side is written here: it calls fn(arg) on the new stack and exits
// with its result. Returns the child's pid (or -errno) in the parent.
  .text
  .globl sandrun_clone3_vm
  .type sandrun_clone3_vm, @function
sandrun_clone3_vm:
  .cfi_startproc
  mov %rdx, %r8          // fn and arg survive the system call in r8/r9 (it clobbers rcx, r11)
  mov %rcx, %r9
  mov $435, %eax         // __NR_clone3
  syscall
  test %rax, %rax
  jz 1f
  ret                    // parent: pid or -errno
1:
  .cfi_undefined rip     // child: no caller to unwind to
  xor %ebp, %ebp
  mov %r9, %rdi
  call *%r8
  mov %eax, %edi
  mov $60, %eax          // __NR_exit: fn never returns in practice; exit just this task
  syscall
  hlt
  .cfi_endproc
  .size sandrun_clone3_vm, .-sandrun_clone3_vm
  .section .note.GNU-stack,"",@progbits
