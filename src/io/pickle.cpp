#include "io/pickle.h"

#include <cstdio>
#include <cstring>
#include <unordered_map>
#include <unordered_set>

#include "sam/error.h"

namespace sam {

namespace {

// Opcodes (Python's Lib/pickletools.py documents each one).
enum Op : uint8_t {
    MARK = '(', STOP = '.', BINFLOAT = 'G', BININT = 'J', BININT1 = 'K', BININT2 = 'M', NONE = 'N',
    BINPERSID = 'Q', REDUCE = 'R', BINUNICODE = 'X', APPEND = 'a', BUILD = 'b', GLOBAL = 'c',
    APPENDS = 'e', BINGET = 'h', LONG_BINGET = 'j', EMPTY_LIST = ']', BINPUT = 'q', LONG_BINPUT = 'r',
    SETITEM = 's', TUPLE = 't', SETITEMS = 'u', EMPTY_DICT = '}', EMPTY_TUPLE = ')',
    PROTO = 0x80, LONG1 = 0x8a, NEWTRUE = 0x88, NEWFALSE = 0x89, TUPLE1 = 0x85, TUPLE2 = 0x86,
    TUPLE3 = 0x87, SHORT_BINUNICODE = 0x8c, STACK_GLOBAL = 0x93, MEMOIZE = 0x94, FRAME = 0x95,
};

// Hostile input cannot make the interpreter hold more than this many stack entries or marks.
// Every value is built from at least one opcode byte, so memory is linear in the input anyway.
constexpr size_t kMaxStack = size_t{1} << 22;
// A tensor's size and stride tuples: SAM's parameters have at most 4 dimensions.
constexpr size_t kMaxTensorDims = 8;
// Tensors (and storages) in one state dict: SAM ViT-H has under 600.
constexpr size_t kMaxTensors = size_t{1} << 16;
// Copies are what a small pickle can multiply: a memoised string or tuple fetched again and again
// costs two bytes per fetch but is copied each time it is used. Every element or byte copied is
// charged against a budget proportional to the pickle's size; a torch.save state dict uses about
// one unit per byte.
constexpr uint64_t kWorkPerByte = 16;
constexpr uint64_t kWorkBase = uint64_t{1} << 20;

// A pickled value. Values live in one arena and refer to each other by index, so that shared and
// even cyclic references (which a pickle can express) need no ownership and no recursion.
struct Value {
    enum Kind : uint8_t { None, Bool, Int, Float, Str, Tuple, List, Dict, Global, Storage, Tensor };
    Kind kind = None;
    int64_t i = 0;                // Int, Bool; index into storages/tensors for Storage/Tensor
    double f = 0;                 // Float
    std::string s;                // Str; "module.name" for Global
    std::vector<uint32_t> items;  // Tuple, List; Dict as key, value, key, value, ...
};

const char* kind_name(Value::Kind k) {
    static const char* names[] = {"None", "bool", "int", "float", "str", "tuple", "list",
                                  "dict", "global", "storage", "tensor"};
    return names[k];
}

struct Storage {
    std::string type;
    std::optional<DType> dtype;
    std::string key;
    int64_t numel = 0;
};

std::optional<DType> storage_dtype(const std::string& global) {
    if (global == "torch.FloatStorage") return DType::F32;
    if (global == "torch.HalfStorage") return DType::F16;
    if (global == "torch.BFloat16Storage") return DType::BF16;
    return std::nullopt;
}

bool is_storage_global(const std::string& module, const std::string& name) {
    return module == "torch" && name.size() > 7 && name.compare(name.size() - 7, 7, "Storage") == 0;
}

class Unpickler {
  public:
    Unpickler(std::span<const uint8_t> bytes, const std::string& path, const std::string& entry)
        : b_(bytes), path_(path), entry_(entry), budget_(kWorkBase + kWorkPerByte * bytes.size()) {}

    std::vector<PickledTensor> run();

  private:
    [[noreturn]] void fail(const std::string& what) const { throw CheckpointError(path_, entry_, what); }
    [[noreturn]] void fail_at(const std::string& what) const {
        fail(what + " (opcode at offset " + std::to_string(op_pos_) + ")");
    }

    // Reading the opcode stream.
    const uint8_t* take(size_t n) {
        if (n > b_.size() - pos_) fail_at("truncated pickle");
        const uint8_t* p = b_.data() + pos_;
        pos_ += n;
        return p;
    }
    uint64_t le(size_t n) {
        const uint8_t* p = take(n);
        uint64_t v = 0;
        for (size_t k = n; k-- > 0;) v = (v << 8) | p[k];
        return v;
    }
    std::string line() {
        const uint8_t* start = b_.data() + pos_;
        const void* nl = std::memchr(start, '\n', b_.size() - pos_);
        if (!nl) fail_at("truncated pickle: unterminated GLOBAL name");
        size_t n = static_cast<size_t>(static_cast<const uint8_t*>(nl) - start);
        pos_ += n + 1;
        return std::string(reinterpret_cast<const char*>(start), n);
    }

    // Charges `n` elements or bytes about to be copied; fails once the pickle has asked for more
    // work than its size allows.
    void charge(uint64_t n) {
        if (n > budget_ - work_)
            fail_at("pickle asks for more copying than its " + std::to_string(b_.size()) +
                    " bytes allow (a memoised value reused too often)");
        work_ += n;
    }

    // The value arena, stack, marks and memo.
    uint32_t make(Value v) {
        charge(1 + v.s.size() + v.items.size());
        arena_.push_back(std::move(v));
        return static_cast<uint32_t>(arena_.size() - 1);
    }
    void push(uint32_t v) {
        if (stack_.size() >= kMaxStack) fail_at("pickle stack too deep");
        stack_.push_back(v);
    }
    void push_new(Value v) { push(make(std::move(v))); }
    uint32_t pop() {
        if (stack_.size() <= (marks_.empty() ? 0 : marks_.back())) fail_at("pickle stack underflow");
        uint32_t v = stack_.back();
        stack_.pop_back();
        return v;
    }
    uint32_t top() {
        if (stack_.size() <= (marks_.empty() ? 0 : marks_.back())) fail_at("pickle stack underflow");
        return stack_.back();
    }
    std::vector<uint32_t> pop_mark() {
        if (marks_.empty()) fail_at("pickle MARK missing");
        size_t m = marks_.back();
        marks_.pop_back();
        charge(stack_.size() - m);
        std::vector<uint32_t> items(stack_.begin() + static_cast<std::ptrdiff_t>(m), stack_.end());
        stack_.resize(m);
        return items;
    }
    Value& expect(uint32_t v, Value::Kind kind, const char* what) {
        if (arena_[v].kind != kind)
            fail_at(std::string(what) + ": expected " + kind_name(kind) + ", got " + kind_name(arena_[v].kind));
        return arena_[v];
    }
    void memo_put(uint64_t index) {
        if (memo_.size() >= kMaxStack && !memo_.count(index)) fail_at("pickle memo too large");
        memo_[index] = top();
    }
    void memo_get(uint64_t index) {
        auto it = memo_.find(index);
        if (it == memo_.end()) fail_at("pickle memo key " + std::to_string(index) + " missing");
        push(it->second);
    }

    void tuple(std::vector<uint32_t> items) { push_new({Value::Tuple, 0, 0, {}, std::move(items)}); }
    void global(const std::string& module, const std::string& name);
    void reduce();
    void rebuild_tensor(std::vector<uint32_t> args);
    void persistent_id();
    std::vector<int64_t> ints(uint32_t tuple, const char* what);
    void step(uint8_t op);
    std::vector<PickledTensor> state_dict(uint32_t root);

    std::span<const uint8_t> b_;
    const std::string& path_;
    const std::string& entry_;
    const uint64_t budget_;
    uint64_t work_ = 0;
    size_t pos_ = 0, op_pos_ = 0;
    bool stopped_ = false;
    std::vector<Value> arena_;
    std::vector<uint32_t> stack_;
    std::vector<size_t> marks_;
    std::unordered_map<uint64_t, uint32_t> memo_;
    std::vector<Storage> storages_;
    std::vector<PickledTensor> tensors_;
};

std::vector<PickledTensor> Unpickler::run() {
    while (!stopped_) {
        if (pos_ >= b_.size()) fail("truncated pickle: no STOP opcode before the end of the data");
        op_pos_ = pos_;
        step(b_[pos_++]);
    }
    if (stack_.empty()) fail("empty pickle");
    return state_dict(stack_.back());
}

void Unpickler::step(uint8_t op) {
    switch (op) {
        case PROTO: {
            uint64_t proto = le(1);
            if (proto < 2 || proto > 5) fail_at("unsupported pickle protocol " + std::to_string(proto));
            break;
        }
        case FRAME: le(8); break;  // framing is only a buffering hint
        case STOP: stopped_ = true; break;
        case MARK:
            if (marks_.size() >= kMaxStack) fail_at("pickle stack too deep");
            marks_.push_back(stack_.size());
            break;

        case NONE: push_new({Value::None, 0, 0, {}, {}}); break;
        case NEWTRUE: push_new({Value::Bool, 1, 0, {}, {}}); break;
        case NEWFALSE: push_new({Value::Bool, 0, 0, {}, {}}); break;
        case BININT1: push_new({Value::Int, static_cast<int64_t>(le(1)), 0, {}, {}}); break;
        case BININT2: push_new({Value::Int, static_cast<int64_t>(le(2)), 0, {}, {}}); break;
        case BININT: push_new({Value::Int, static_cast<int32_t>(le(4)), 0, {}, {}}); break;
        case LONG1: {
            size_t n = static_cast<size_t>(le(1));
            if (n > 8) fail_at("integer of " + std::to_string(n) + " bytes too large");
            uint64_t v = n ? le(n) : 0;
            if (n > 0 && n < 8 && (v >> (8 * n - 1)) & 1) v |= ~uint64_t{0} << (8 * n);  // sign-extend
            push_new({Value::Int, static_cast<int64_t>(v), 0, {}, {}});
            break;
        }
        case BINFLOAT: {
            const uint8_t* p = take(8);
            uint64_t bits = 0;
            for (int k = 0; k < 8; ++k) bits = (bits << 8) | p[k];  // big-endian
            double d;
            std::memcpy(&d, &bits, sizeof d);
            push_new({Value::Float, 0, d, {}, {}});
            break;
        }
        case SHORT_BINUNICODE:
        case BINUNICODE: {
            size_t n = static_cast<size_t>(le(op == BINUNICODE ? 4 : 1));
            const uint8_t* p = take(n);
            push_new({Value::Str, 0, 0, std::string(reinterpret_cast<const char*>(p), n), {}});
            break;
        }

        case EMPTY_TUPLE: tuple({}); break;
        case TUPLE1:
        case TUPLE2:
        case TUPLE3: {
            std::vector<uint32_t> items(op - TUPLE1 + 1u);
            for (size_t k = items.size(); k-- > 0;) items[k] = pop();
            tuple(std::move(items));
            break;
        }
        case TUPLE: tuple(pop_mark()); break;
        case EMPTY_LIST: push_new({Value::List, 0, 0, {}, {}}); break;
        case EMPTY_DICT: push_new({Value::Dict, 0, 0, {}, {}}); break;
        case APPEND: {
            uint32_t v = pop();
            expect(top(), Value::List, "APPEND target").items.push_back(v);
            break;
        }
        case APPENDS: {
            std::vector<uint32_t> items = pop_mark();
            auto& list = expect(top(), Value::List, "APPENDS target").items;
            list.insert(list.end(), items.begin(), items.end());
            break;
        }
        case SETITEM: {
            uint32_t v = pop(), k = pop();
            auto& dict = expect(top(), Value::Dict, "SETITEM target").items;
            dict.push_back(k);
            dict.push_back(v);
            break;
        }
        case SETITEMS: {
            std::vector<uint32_t> items = pop_mark();
            if (items.size() % 2) fail_at("SETITEMS with an odd number of items");
            auto& dict = expect(top(), Value::Dict, "SETITEMS target").items;
            dict.insert(dict.end(), items.begin(), items.end());
            break;
        }

        case BINPUT: memo_put(le(1)); break;
        case LONG_BINPUT: memo_put(le(4)); break;
        case MEMOIZE: memo_put(memo_.size()); break;
        case BINGET: memo_get(le(1)); break;
        case LONG_BINGET: memo_get(le(4)); break;

        case GLOBAL: {
            std::string module = line();
            global(module, line());
            break;
        }
        case STACK_GLOBAL: {
            uint32_t name = pop(), module = pop();
            const std::string& m = expect(module, Value::Str, "STACK_GLOBAL module").s;
            const std::string& n = expect(name, Value::Str, "STACK_GLOBAL name").s;
            charge(m.size() + n.size());
            global(m, n);
            break;
        }
        case REDUCE: reduce(); break;
        case BUILD: {
            // The only BUILD torch.save emits sets OrderedDict attributes (`_metadata`): ignored.
            pop();
            expect(top(), Value::Dict, "BUILD target");
            break;
        }
        case BINPERSID: persistent_id(); break;

        default: {
            char hex[8];
            std::snprintf(hex, sizeof hex, "0x%02x", op);
            fail("unknown pickle opcode " + std::string(hex) + " at offset " + std::to_string(op_pos_));
        }
    }
}

void Unpickler::global(const std::string& module, const std::string& name) {
    bool known = (module == "collections" && name == "OrderedDict") ||
                 (module == "torch._utils" && name == "_rebuild_tensor_v2") || is_storage_global(module, name);
    if (!known)
        fail_at("unknown global '" + module + "." + name +
                "' (a state dict only uses collections.OrderedDict, torch._utils._rebuild_tensor_v2 and "
                "torch.*Storage)");
    push_new({Value::Global, 0, 0, module + "." + name, {}});
}

void Unpickler::reduce() {
    uint32_t args = pop();
    uint32_t callable = pop();
    const std::string& name = expect(callable, Value::Global, "REDUCE callable").s;
    const size_t nargs = expect(args, Value::Tuple, "REDUCE arguments").items.size();
    if (name == "collections.OrderedDict") {
        if (nargs != 0) fail_at("OrderedDict with constructor arguments is not supported");
        push_new({Value::Dict, 0, 0, {}, {}});
    } else if (name == "torch._utils._rebuild_tensor_v2") {
        if (nargs != 6 && nargs != 7)
            fail_at("_rebuild_tensor_v2 takes 6 or 7 arguments, got " + std::to_string(nargs));
        charge(nargs);
        rebuild_tensor(arena_[args].items);  // copied: rebuild_tensor grows the arena
    } else {
        fail_at("cannot call " + name.substr(0, 200));
    }
}

// A tensor's size or stride: a tuple of at most kMaxTensorDims ints.
std::vector<int64_t> Unpickler::ints(uint32_t tuple, const char* what) {
    const std::vector<uint32_t>& items = expect(tuple, Value::Tuple, what).items;
    if (items.size() > kMaxTensorDims)
        fail_at(std::string(what) + " has " + std::to_string(items.size()) + " dimensions, more than " +
                std::to_string(kMaxTensorDims));
    charge(items.size());
    std::vector<int64_t> out;
    for (uint32_t v : items) out.push_back(expect(v, Value::Int, what).i);
    return out;
}

// _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
void Unpickler::rebuild_tensor(std::vector<uint32_t> a) {
    if (tensors_.size() >= kMaxTensors) fail_at("more than " + std::to_string(kMaxTensors) + " tensors");
    const Storage& s = storages_[static_cast<size_t>(expect(a[0], Value::Storage, "tensor storage").i)];
    charge(s.type.size() + s.key.size());
    PickledTensor t;
    t.storage_type = s.type;
    t.dtype = s.dtype;
    t.storage = s.key;
    t.storage_numel = s.numel;
    t.storage_offset = expect(a[1], Value::Int, "tensor storage offset").i;
    t.shape = ints(a[2], "tensor size");
    t.stride = ints(a[3], "tensor stride");
    if (t.shape.size() != t.stride.size())
        fail_at("tensor size has " + std::to_string(t.shape.size()) + " dimensions but stride has " +
                std::to_string(t.stride.size()));
    tensors_.push_back(std::move(t));
    push_new({Value::Tensor, static_cast<int64_t>(tensors_.size() - 1), 0, {}, {}});
}

// ('storage', torch.<T>Storage, '<key>', '<location>', numel)
void Unpickler::persistent_id() {
    const uint32_t tuple = pop();
    if (expect(tuple, Value::Tuple, "persistent id").items.size() != 5)
        fail_at("persistent id is not ('storage', type, key, location, numel)");
    const std::vector<uint32_t> pid = arena_[tuple].items;
    if (expect(pid[0], Value::Str, "persistent id").s != "storage")
        fail_at("persistent id is not ('storage', type, key, location, numel)");
    if (storages_.size() >= kMaxTensors) fail_at("more than " + std::to_string(kMaxTensors) + " storages");
    charge(expect(pid[1], Value::Global, "storage type").s.size() + expect(pid[2], Value::Str, "storage key").s.size());
    Storage s;
    s.type = arena_[pid[1]].s;
    if (s.type.rfind("torch.", 0) != 0) fail_at("storage type " + s.type + " is not a torch storage");
    s.dtype = storage_dtype(s.type);
    s.key = expect(pid[2], Value::Str, "storage key").s;
    expect(pid[3], Value::Str, "storage location");
    s.numel = expect(pid[4], Value::Int, "storage size").i;
    storages_.push_back(std::move(s));
    push_new({Value::Storage, static_cast<int64_t>(storages_.size() - 1), 0, {}, {}});
}

std::vector<PickledTensor> Unpickler::state_dict(uint32_t root) {
    // SAM 2 checkpoints wrap the state dict: torch.save({"model": state_dict}).
    if (arena_[root].kind == Value::Dict && arena_[root].items.size() == 2) {
        const Value& key = arena_[arena_[root].items[0]];
        const Value& value = arena_[arena_[root].items[1]];
        if (key.kind == Value::Str && key.s == "model" && value.kind == Value::Dict) root = arena_[root].items[1];
    }
    const Value& dict = arena_[root];
    if (dict.kind != Value::Dict)
        fail(std::string("top-level object is a ") + kind_name(dict.kind) + ", not a state dict");
    std::vector<PickledTensor> out;
    std::unordered_set<std::string> seen;
    for (size_t k = 0; k + 1 < dict.items.size(); k += 2) {
        const Value& key = arena_[dict.items[k]];
        const Value& value = arena_[dict.items[k + 1]];
        if (key.kind != Value::Str) fail(std::string("state dict key is a ") + kind_name(key.kind) + ", not a str");
        if (value.kind != Value::Tensor)
            throw CheckpointError(path_, key.s, std::string("value is a ") + kind_name(value.kind) + ", not a tensor");
        if (!seen.insert(key.s).second) throw CheckpointError(path_, key.s, "duplicate key in state dict");
        PickledTensor t = tensors_[static_cast<size_t>(value.i)];
        charge(2 * key.s.size() + t.storage_type.size() + t.storage.size() + t.shape.size() + t.stride.size());
        t.key = key.s;
        out.push_back(std::move(t));
    }
    return out;
}

}  // namespace

std::vector<PickledTensor> parse_state_dict_pickle(std::span<const uint8_t> bytes, const std::string& path,
                                                   const std::string& entry) {
    return Unpickler(bytes, path, entry).run();
}

// ---- writing ----

StateDictPickler::StateDictPickler() {
    op(PROTO);
    op(2);
    global("collections", "OrderedDict");
    op(EMPTY_TUPLE);
    op(REDUCE);
    put_memo();
}

void StateDictPickler::put_memo() {
    uint32_t index = next_memo_++;
    if (index < 256) {
        op(BINPUT);
        op(static_cast<uint8_t>(index));
    } else {
        op(LONG_BINPUT);
        for (int k = 0; k < 4; ++k) op(static_cast<uint8_t>(index >> (8 * k)));
    }
}

void StateDictPickler::get_memo(uint32_t index) {
    if (index < 256) {
        op(BINGET);
        op(static_cast<uint8_t>(index));
    } else {
        op(LONG_BINGET);
        for (int k = 0; k < 4; ++k) op(static_cast<uint8_t>(index >> (8 * k)));
    }
}

void StateDictPickler::str(const std::string& s) {
    op(BINUNICODE);
    uint32_t n = static_cast<uint32_t>(s.size());
    for (int k = 0; k < 4; ++k) op(static_cast<uint8_t>(n >> (8 * k)));
    out_.insert(out_.end(), s.begin(), s.end());
    put_memo();
}

void StateDictPickler::shared_str(const std::string& s) {
    auto it = shared_.find("\"" + s);
    if (it != shared_.end()) return get_memo(it->second);
    str(s);
    shared_.emplace("\"" + s, next_memo_ - 1);
}

void StateDictPickler::global(const std::string& module, const std::string& name) {
    std::string id = module + "\n" + name + "\n";
    auto it = shared_.find(id);
    if (it != shared_.end()) return get_memo(it->second);
    op(GLOBAL);
    out_.insert(out_.end(), id.begin(), id.end());
    put_memo();
    shared_.emplace(id, next_memo_ - 1);
}

void StateDictPickler::integer(int64_t v) {
    if (v >= 0 && v <= 0xFF) {
        op(BININT1);
        op(static_cast<uint8_t>(v));
    } else if (v >= 0 && v <= 0xFFFF) {
        op(BININT2);
        op(static_cast<uint8_t>(v));
        op(static_cast<uint8_t>(v >> 8));
    } else if (v >= INT32_MIN && v <= INT32_MAX) {
        op(BININT);
        for (int k = 0; k < 4; ++k) op(static_cast<uint8_t>(static_cast<uint64_t>(v) >> (8 * k)));
    } else {
        // Shortest two's complement little-endian encoding.
        std::vector<uint8_t> bytes;
        uint64_t u = static_cast<uint64_t>(v);
        for (int k = 0; k < 8; ++k) bytes.push_back(static_cast<uint8_t>(u >> (8 * k)));
        while (bytes.size() > 1) {
            uint8_t last = bytes.back(), prev = bytes[bytes.size() - 2];
            if ((last == 0 && !(prev & 0x80)) || (last == 0xFF && (prev & 0x80))) bytes.pop_back();
            else break;
        }
        op(LONG1);
        op(static_cast<uint8_t>(bytes.size()));
        out_.insert(out_.end(), bytes.begin(), bytes.end());
    }
}

void StateDictPickler::int_tuple(const std::vector<int64_t>& v) {
    if (v.empty()) return op(EMPTY_TUPLE);
    if (v.size() > 3) op(MARK);
    for (int64_t x : v) integer(x);
    op(v.size() == 1 ? TUPLE1 : v.size() == 2 ? TUPLE2 : v.size() == 3 ? TUPLE3 : TUPLE);
    put_memo();
}

void StateDictPickler::add(const std::string& key, const std::string& storage_type, const std::string& storage,
                           int64_t storage_numel, const Shape& shape) {
    // Python's pickler sends dict items in batches of 1000: MARK key value ... SETITEMS.
    if (pending_items_ == 0) op(MARK);
    str(key);
    global("torch._utils", "_rebuild_tensor_v2");
    op(MARK);
    // Persistent id ('storage', torch.<T>Storage, key, 'cpu', numel) -> the storage.
    op(MARK);
    shared_str("storage");
    global("torch", storage_type);
    str(storage);
    shared_str("cpu");
    integer(storage_numel);
    op(TUPLE);
    put_memo();
    op(BINPERSID);
    integer(0);  // storage offset
    int_tuple(shape);
    std::vector<int64_t> stride(shape.size());
    int64_t s = 1;
    for (size_t d = shape.size(); d-- > 0;) {
        stride[d] = s;
        s *= shape[d];
    }
    int_tuple(stride);
    op(NEWFALSE);  // requires_grad
    global("collections", "OrderedDict");  // backward hooks: OrderedDict()
    op(EMPTY_TUPLE);
    op(REDUCE);
    put_memo();
    op(TUPLE);
    put_memo();
    op(REDUCE);
    put_memo();
    if (++pending_items_ == 1000) {
        op(SETITEMS);
        pending_items_ = 0;
    }
}

std::vector<uint8_t> StateDictPickler::finish() {
    if (pending_items_) op(SETITEMS);
    pending_items_ = 0;
    op(STOP);
    return std::move(out_);
}

}  // namespace sam
