// A fixed table whose slots are constructed on first use. The storage is reserved at
// compile time (no allocation), but a slot's pages are touched only when a connection first
// needs it: a 64-client table costs the memory of the clients actually seen. Slots are
// never destroyed (the agent's lifetime); users reset them for reuse.
// Range-for visits the constructed slots only.
#pragma once
#include <stddef.h>

#include <new>
#include <type_traits>

namespace ew {

template <typename T, size_t N>
class Slots {
public:
    static constexpr size_t capacity() { return N; }
    bool made(size_t i) const { return made_[i]; }
    // The slot if it was ever constructed, else nullptr (for reading: constructs nothing).
    T* get(size_t i) { return made_[i] ? at(i) : nullptr; }
    const T* get(size_t i) const { return made_[i] ? at(i) : nullptr; }
    // The slot, constructed now if it never was.
    T& make(size_t i) {
        if (!made_[i]) {
            new (&store_[i]) T;  // default-init: buffers stay untouched until used
            made_[i] = true;
        }
        return *at(i);
    }

    class iterator {
    public:
        iterator(Slots* s, size_t i) : s_(s), i_(i) { skip(); }
        T& operator*() const { return *s_->at(i_); }
        iterator& operator++() {
            i_++;
            skip();
            return *this;
        }
        bool operator!=(const iterator& o) const { return i_ != o.i_; }

    private:
        void skip() {
            while (i_ < N && !s_->made_[i_]) i_++;
        }
        Slots* s_;
        size_t i_;
    };
    iterator begin() { return iterator(this, 0); }
    iterator end() { return iterator(this, N); }

    class const_iterator {
    public:
        const_iterator(const Slots* s, size_t i) : s_(s), i_(i) { skip(); }
        const T& operator*() const { return *s_->at(i_); }
        const_iterator& operator++() {
            i_++;
            skip();
            return *this;
        }
        bool operator!=(const const_iterator& o) const { return i_ != o.i_; }

    private:
        void skip() {
            while (i_ < N && !s_->made_[i_]) i_++;
        }
        const Slots* s_;
        size_t i_;
    };
    const_iterator begin() const { return const_iterator(this, 0); }
    const_iterator end() const { return const_iterator(this, N); }

private:
    T* at(size_t i) { return std::launder(reinterpret_cast<T*>(&store_[i])); }
    const T* at(size_t i) const { return std::launder(reinterpret_cast<const T*>(&store_[i])); }

    typename std::aligned_storage<sizeof(T), alignof(T)>::type store_[N];
    bool made_[N] = {};
};

}  // namespace ew
