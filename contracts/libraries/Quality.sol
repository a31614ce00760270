// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title Quality
/// @notice Pure maths of proof of quality: verifier assignment, packed score rows, medians.
/// Scores are basis points (0..10_000) of a peer's update evaluated on the verifier's data.
library Quality {
    /// @notice The largest score: 100 % in basis points.
    uint16 internal constant MAX_SCORE = 10_000;
    /// @notice Scores packed into one storage word.
    uint256 internal constant SCORES_PER_WORD = 16;

    /// @notice How many updates each verifier scores among `n` participants with `k` verifiers per
    /// update requested (0 = every other participant).
    function assignmentSize(uint256 n, uint256 k) internal pure returns (uint256) {
        if (n < 2) return 0;
        return (k == 0 || k >= n - 1) ? n - 1 : k;
    }

    /// @notice The index of the `t`-th update verifier `i` scores.
    /// @dev Circulant assignment: target = i + 1 + (offset + t) mod (n - 1), modulo n. For t < n - 1
    /// the targets of one verifier are distinct and never i; every target gets one verifier per t.
    function target(uint256 i, uint256 t, uint256 offset, uint256 n) internal pure returns (uint256) {
        return (i + 1 + (offset + t) % (n - 1)) % n;
    }

    /// @notice The verifier whose `t`-th score is of update `j` (inverse of {target}).
    function verifier(uint256 j, uint256 t, uint256 offset, uint256 n) internal pure returns (uint256) {
        uint256 step = 1 + (offset + t) % (n - 1);
        return (j + n - step) % n;
    }

    /// @notice Packs `scores` into words of 16 uint16 each (score i at bits 16*(i%16)).
    function pack(uint16[] calldata scores) internal pure returns (uint256[] memory words) {
        words = new uint256[]((scores.length + SCORES_PER_WORD - 1) / SCORES_PER_WORD);
        for (uint256 i; i < scores.length; ++i) {
            words[i / SCORES_PER_WORD] |= uint256(scores[i]) << (16 * (i % SCORES_PER_WORD));
        }
    }

    /// @notice Score number `index` of a packed row.
    function at(uint256[] memory words, uint256 index) internal pure returns (uint16) {
        return uint16(words[index / SCORES_PER_WORD] >> (16 * (index % SCORES_PER_WORD)));
    }

    /// @notice The median of the first `length` values (mean of the two middle ones when even);
    /// 0 when empty. A minority of colluding verifiers cannot move it past the honest values.
    /// @dev Sorts in place (insertion sort: rows are bounded by the task's participant cap).
    function median(uint16[] memory values, uint256 length) internal pure returns (uint16) {
        if (length == 0) return 0;
        for (uint256 i = 1; i < length; ++i) {
            uint16 v = values[i];
            uint256 j = i;
            while (j > 0 && values[j - 1] > v) {
                values[j] = values[j - 1];
                --j;
            }
            values[j] = v;
        }
        uint256 mid = length / 2;
        if (length % 2 == 1) return values[mid];
        return uint16((uint256(values[mid - 1]) + uint256(values[mid])) / 2);
    }
}
