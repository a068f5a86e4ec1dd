//! A reference interpreter for the programs [`super`] emits: it runs a program on one
//! syscall the way the kernel's classic BPF interpreter would, so that tests can hold the
//! compiled program against the policy it came from without installing it.
use super::{BpfInstruction, AND, ARGS_OFFSET, JA, JEQ, JGE, JGT, LOAD_WORD, RETURN};

/// Runs `program` on a syscall the way the kernel's classic BPF interpreter would;
/// returns the action and how many instructions ran.
pub fn run(program: &[BpfInstruction], arch: u32, number: u32, args: [u64; 6]) -> (u32, usize) {
    let mut data = [0u8; 64];
    data[0..4].copy_from_slice(&number.to_le_bytes());
    data[4..8].copy_from_slice(&arch.to_le_bytes());
    for (index, arg) in args.iter().enumerate() {
        let at = ARGS_OFFSET as usize + 8 * index;
        data[at..at + 8].copy_from_slice(&arg.to_le_bytes());
    }
    let (mut accumulator, mut pc, mut steps) = (0u32, 0usize, 0usize);
    loop {
        let instruction = program[pc];
        steps += 1;
        pc += 1;
        let k = instruction.k;
        let jump = |taken: bool| {
            usize::from(if taken {
                instruction.jt
            } else {
                instruction.jf
            })
        };
        match instruction.code {
            LOAD_WORD => {
                let at = k as usize;
                accumulator = u32::from_le_bytes(data[at..at + 4].try_into().unwrap());
            }
            AND => accumulator &= k,
            JA => pc += k as usize,
            JEQ => pc += jump(accumulator == k),
            JGT => pc += jump(accumulator > k),
            JGE => pc += jump(accumulator >= k),
            RETURN => return (k, steps),
            other => panic!("unexpected instruction {other:#x}"),
        }
    }
}
